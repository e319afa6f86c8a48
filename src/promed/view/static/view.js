// ProMed viewer: sortable tables and the case list's filters. Plain JavaScript, no library (works offline).
"use strict";

function cellValue(row, index, numeric) {
  const cell = row.children[index];
  if (!cell) return numeric ? -Infinity : "";
  const raw = cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent.trim();
  if (!numeric) return raw.toLowerCase();
  const x = parseFloat(raw);
  return Number.isNaN(x) ? -Infinity : x;
}

function makeSortable(table) {
  const headers = Array.from(table.tHead.rows[0].cells);
  headers.forEach((th, index) => {
    th.addEventListener("click", () => {
      const numeric = th.dataset.type === "num";
      const ascending = !th.classList.contains("asc");
      headers.forEach((h) => h.classList.remove("asc", "desc"));
      th.classList.add(ascending ? "asc" : "desc");
      const body = table.tBodies[0];
      const rows = Array.from(body.rows);
      rows.sort((a, b) => {
        const x = cellValue(a, index, numeric), y = cellValue(b, index, numeric);
        return (x < y ? -1 : x > y ? 1 : 0) * (ascending ? 1 : -1);
      });
      rows.forEach((r) => body.appendChild(r));
    });
  });
}

function setUpFilters(form, table) {
  const rows = Array.from(table.tBodies[0].rows);
  const count = document.getElementById("count");
  function apply() {
    const verdict = form.elements.verdict.value;
    const questions = form.elements.questions.value;
    const minSig = parseFloat(form.elements.sig.value);
    const words = form.elements.text.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    rows.forEach((row) => {
      const d = row.dataset;
      const ok = (!verdict || d.correct === verdict)
        && (questions === "" || d.questions === questions)
        && (Number.isNaN(minSig) || parseFloat(d.sig) >= minSig)
        && words.every((w) => d.text.includes(w));
      row.hidden = !ok;
      if (ok) shown += 1;
    });
    count.textContent = `showing ${shown} of ${rows.length}`;
  }
  form.addEventListener("input", apply);
  form.addEventListener("change", apply);
  apply();
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("table.sortable").forEach(makeSortable);
  const form = document.getElementById("filters");
  const cases = document.getElementById("cases");
  if (form && cases) setUpFilters(form, cases);
});
