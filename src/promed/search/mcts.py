"""Stage 1 of ProMed: SIG-guided Monte Carlo Tree Search over consultations.

What: for one case, search the tree of dialogues (which question to ask next, or when to answer) for
high-return trajectories, which are then exported as supervised fine-tuning data (:mod:`promed.runs.mcts`).

The split follows llm-reasoners (``reasoners/base.py``): a *world model* (:class:`ConsultationWorld`: states,
transitions, terminal test), a *search config* (the candidate source of :mod:`promed.search.candidates` plus the
:class:`Rewarder`) and the *algorithm* (:func:`mcts_search`) returning a typed :class:`MctsResult`.

World model
    A :class:`State` is the dialogue so far: the turns (question, reply, revealed and new fact ids), the facts
    known and, once the doctor answered, the answer. Asking calls the patient; replies are memoised per
    (case id, question) because patients are deterministic, so a question asked on many branches costs one
    patient call. A state is terminal once the doctor answered; with no questions left answering is the only
    action.

Actions
    At every node: up to ``width`` questions from the candidate source (deduplicated, never one already asked on
    the path) and the answer actions. The answer action is ``ANSWER: X`` where X is the scorer's argmax given the
    facts revealed on that path (``BayesScorer`` on SynthClinic, ``LLMScorer`` otherwise); a policy candidate
    source adds the letters its own samples answered with. The scorer reads only what the dialogue revealed,
    never the gold answer; correctness is only used for the reward.

Rewards (:class:`Rewarder`)
    Asking q_t earns ``w_sig * SIG(q_t) - question_cost``, with SIG computed by :func:`promed.sig.reward.sig_of_turns`
    from the case's cached Shapley weights (new facts only: repeated and unanswerable questions earn 0), exactly
    the values :class:`promed.sig.annotate.SigAnnotator` gives the exported transcript. Answering earns
    ``w_correct`` if the answer is the gold letter, else 0. A trajectory's return is sum_t gamma^t r_t.

Algorithm
    Each iteration: *select* from the root by UCT (unvisited children first, in decreasing order of their
    immediate reward, ties broken by the RNG; fully explored subtrees are skipped), *expand* the leaf (one
    candidate proposal, one batched patient call for its questions, one batched scorer call for the answers of
    all its children), *simulate* to a terminal state by the rollout policy (greedy: among the questions whose
    reply reveals a new fact, the one with the highest immediate reward, answering once none does; random: a
    uniformly random question, answering when the budget is spent; both prefer unexplored children), adding the
    simulated nodes to the tree as llm-reasoners does, and *back up* the
    discounted return along the path (node value = mean return from that node on). Every iteration therefore
    ends in a complete trajectory; all of them are kept.

Output
    The best trajectory by :func:`rank_trajectories`: correct before incorrect, then higher return, then fewer
    questions, then earlier discovery. With ``require_correct`` a case whose search found no correct trajectory
    has no best trajectory (the caller skips it).

Deviations from the paper: the stored material does not give the paper's MCTS details (simulation policy, reward
weights, how the answer is proposed), so these choices are ours and documented here; the question candidates of
the ``facts`` source are written from the hidden facts (a search-time data generator), not sampled from the
policy as the paper's MCTS does with its model (the ``policy`` source does that).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol, Sequence

import numpy as np

from promed.doctor.actions import normalise_question
from promed.env.consultation import DialogueState, dialogue_view, transition
from promed.errors import InputError
from promed.sig.reward import sig_of_turns
from promed.types import Answer, Ask, Case, DoctorView, Patient, Scorer, Transcript, Turn

Rollout = Literal["greedy", "random"]


@dataclass(frozen=True)
class MctsConfig:
    """Search settings (per case)."""

    iterations: int = field(default=32, metadata={"help": "MCTS iterations per case (each ends in a complete "
                                                          "trajectory)."})
    width: int = field(default=4, metadata={"help": "Question candidates proposed per expanded node (per source)."})
    max_questions: int = field(default=5, metadata={"help": "Question budget = maximum depth before answering."})
    c_uct: float = field(default=1.0, metadata={"help": "UCT exploration constant."})
    gamma: float = field(default=1.0, metadata={"help": "Discount of later rewards in returns and backups (< 1: "
                                                        "informative questions first, answer once the case is "
                                                        "settled)."})
    w_sig: float = field(default=1.0, metadata={"help": "Weight of a question's SIG in its step reward (0 = off)."})
    w_correct: float = field(default=1.0, metadata={"help": "Reward of a correct final answer."})
    question_cost: float = field(default=0.0, metadata={"help": "Cost subtracted from every question's reward."})
    rollout: Rollout = field(default="greedy", metadata={"help": "Simulation policy: greedy (highest immediate "
                                                                   "reward) or random."})

    def __post_init__(self) -> None:
        for name, value, low in (("iterations", self.iterations, 1), ("width", self.width, 1),
                                 ("max-questions", self.max_questions, 0)):
            if value < low:
                raise InputError(f"--{name} must be >= {low}, got {value}")
        if not 0.0 < self.gamma <= 1.0:
            raise InputError(f"--gamma must be in (0, 1], got {self.gamma}")
        if self.rollout not in ("greedy", "random"):
            raise InputError(f"rollout must be greedy or random, got {self.rollout!r}")


# ---- world model ----------------------------------------------------------------------------------------------


State = DialogueState
"""A search node's dialogue state: the consultation core's :class:`promed.env.consultation.DialogueState`."""


@dataclass
class Counters:
    """Model calls made by a search (mutable tallies, reported in :class:`MctsStats`)."""

    patient_calls: int = 0
    patient_questions: int = 0
    scorer_calls: int = 0
    scorer_queries: int = 0


class ConsultationWorld:
    """The consultation of one case as a world model (states, transitions, memoised patient and scorer).

    ``replies`` may be shared between worlds (a dict keyed by (case id, question)) so that a run can prefetch
    many cases' replies in one batched patient call.
    """

    def __init__(self, case: Case, patient: Patient, scorer: Scorer, max_questions: int,
                 replies: dict[tuple[str, str], tuple[str, tuple[int, ...]]] | None = None):
        self.case, self.patient, self.scorer, self.max_questions = case, patient, scorer, max_questions
        self.memo = replies if replies is not None else {}
        self.answers: dict[frozenset[int], str] = {}
        self.counters = Counters()

    def init_state(self) -> State:
        return State()

    def is_terminal(self, state: State) -> bool:
        return state.answer is not None

    def questions_left(self, state: State) -> int:
        return max(0, self.max_questions - state.n_questions)

    def view(self, state: State) -> DoctorView:
        return dialogue_view(self.case, state, self.max_questions)

    def prefetch(self, questions: Sequence[str]) -> None:
        """Ask the patient every question not memoised yet, in one batched call."""
        todo = list(dict.fromkeys(q for q in questions if (self.case.id, q) not in self.memo))
        if todo:
            out = self.patient.reply([self.case] * len(todo), todo)
            self.counters.patient_calls += 1
            self.counters.patient_questions += len(todo)
            for q, r in zip(todo, out):
                self.memo[(self.case.id, q)] = (r[0], tuple(sorted(int(i) for i in r[1])))

    def step(self, state: State, action: Ask | Answer) -> State:
        """The next state; a question within budget is answered from the memo (fetched if needed)."""
        if self.is_terminal(state):
            raise ValueError("step from a terminal state")
        if isinstance(action, Answer):
            return transition(state, action)[0]
        if self.questions_left(state) == 0:
            raise ValueError("no questions left: only answering is allowed")
        self.prefetch([action.question])
        return transition(state, action, self.memo[(self.case.id, action.question)])[0]

    def scorer_answers(self, states: Sequence[State]) -> list[str]:
        """The scorer's argmax letter given each state's known facts (one batched call for the unmemoised)."""
        todo = list(dict.fromkeys(s.known for s in states if s.known not in self.answers))
        if todo:
            rows = self.scorer.probs([self.case.query(sorted(k)) for k in todo])
            self.counters.scorer_calls += 1
            self.counters.scorer_queries += len(todo)
            for k, row in zip(todo, rows):
                self.answers[k] = self.case.letters[int(np.argmax(np.asarray(row, dtype=float)))]
        return [self.answers[s.known] for s in states]


# ---- search config: candidates and rewards --------------------------------------------------------------------


@dataclass(frozen=True)
class Proposal:
    """Candidate doctor turns for one node: questions and (policy sources only) answer letters."""

    questions: tuple[str, ...] = ()
    answers: tuple[str, ...] = ()
    invalid: int = 0


class CandidateSource(Protocol):
    """Proposes candidate turns for a node; implementations in :mod:`promed.search.candidates`.

    ``calls`` counts model (generate) calls made so far. ``prefetch(case)`` lists questions worth sending to the
    patient in one batch up front (may be empty).
    """

    name: str
    calls: int

    def propose(self, case: Case, view: DoctorView, width: int, rng: np.random.Generator) -> Proposal: ...

    def prefetch(self, case: Case) -> list[str]: ...


class Rewarder:
    """Step rewards of one case: SIG-weighted questions (minus a cost) and a correctness bonus for the answer."""

    def __init__(self, case: Case, weights: np.ndarray, lam: float, cfg: MctsConfig):
        self.case, self.weights, self.lam, self.cfg = case, np.asarray(weights, dtype=float), lam, cfg
        self._sig: dict[tuple[int, ...], float] = {}

    def sig(self, turn: Turn) -> float:
        """SIG of a turn whose ``new`` facts are set (:func:`promed.sig.reward.sig_of_turns`, memoised)."""
        if turn.new not in self._sig:
            self._sig[turn.new] = float(sig_of_turns([turn.new], self.weights, self.case.n_facts, self.lam)[0])
        return self._sig[turn.new]

    def __call__(self, child: State) -> float:
        if child.answer is not None:
            return self.cfg.w_correct * float(child.answer == self.case.answer)
        return self.cfg.w_sig * self.sig(child.turns[-1]) - self.cfg.question_cost


# ---- results --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trajectory:
    """A complete consultation found by the search; turns carry their SIG, ``ret`` is the discounted return."""

    case_id: str
    turns: tuple[Turn, ...]
    answer: str
    correct: bool
    rewards: tuple[float, ...]
    ret: float
    order: int = 0

    @property
    def n_questions(self) -> int:
        return len(self.turns)

    @property
    def sig(self) -> tuple[float, ...]:
        return tuple(float(t.sig or 0.0) for t in self.turns)

    def transcript(self, doctor: str = "mcts") -> Transcript:
        return Transcript(case_id=self.case_id, turns=self.turns, answer=self.answer, correct=self.correct,
                          end="answer", n_outputs=len(self.turns) + 1, doctor=doctor)


@dataclass(frozen=True)
class MctsStats:
    """What a search cost."""

    iterations: int
    nodes: int
    trajectories: int
    patient_calls: int
    patient_questions: int
    scorer_calls: int
    scorer_queries: int
    proposal_calls: int
    seconds: float


@dataclass(frozen=True)
class ChildStat:
    """A root action's search statistics: visits, mean return and immediate reward."""

    action: str
    visits: int
    value: float
    reward: float


@dataclass(frozen=True)
class MctsResult:
    """The best trajectory (``None`` when none qualifies), the top distinct trajectories, root statistics and
    the stats."""

    case_id: str
    best: Trajectory | None
    top: tuple[Trajectory, ...]
    stats: MctsStats
    root: tuple[ChildStat, ...] = ()


def rank_trajectories(trajs: Sequence[Trajectory], k: int | None = None,
                      require_correct: bool = False) -> list[Trajectory]:
    """Best first: correct first, then higher return, fewer questions, earlier found; at most ``k``."""
    pool = [t for t in trajs if t.correct or not require_correct]
    pool.sort(key=lambda t: (not t.correct, -round(t.ret, 12), t.n_questions, t.order))
    return pool if k is None else pool[:k]


# ---- the algorithm --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class Node:
    state: State
    parent: "Node | None" = None
    reward: float = 0.0
    children: list["Node"] | None = None
    visits: int = 0
    total: float = 0.0
    exhausted: bool = False

    @property
    def value(self) -> float:
        return self.total / self.visits if self.visits else 0.0

    @property
    def action(self) -> str:
        s = self.state
        return f"ANSWER: {s.answer}" if s.answer is not None else f"ASK: {s.turns[-1].question}" if s.turns else ""


def uct_scores(values: np.ndarray, visits: np.ndarray, parent_visits: int, c: float) -> np.ndarray:
    """UCT: mean value + c * sqrt(ln N_parent / N_child); unvisited children score +inf."""
    values, visits = np.asarray(values, dtype=float), np.asarray(visits, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        bonus = c * np.sqrt(math.log(max(parent_visits, 1)) / visits)
    return np.where(visits > 0, values + bonus, np.inf)


def _argmax(scores: np.ndarray, rng: np.random.Generator) -> int:
    best = np.flatnonzero(scores == scores.max())
    return int(best[0] if len(best) == 1 else rng.choice(best))


class _Search:
    def __init__(self, world: ConsultationWorld, source: CandidateSource, rewarder: Rewarder, cfg: MctsConfig,
                 rng: np.random.Generator):
        self.world, self.source, self.rewarder, self.cfg, self.rng = world, source, rewarder, cfg, rng
        self.root = Node(world.init_state())
        self.nodes = 1
        self.found: list[Trajectory] = []

    def expand(self, node: Node) -> None:
        w, s = self.world, node.state
        questions: list[str] = []
        letters: list[str] = []
        if w.questions_left(s) > 0:
            prop = self.source.propose(w.case, w.view(s), self.cfg.width, self.rng)
            seen = set(s.asked)
            for q in prop.questions:
                q = " ".join(q.split())
                if q and normalise_question(q) not in seen:
                    seen.add(normalise_question(q))
                    questions.append(q)
            letters = [a for a in prop.answers if a in w.case.letters]
        w.prefetch(questions)
        children = [Node(w.step(s, Ask(q)), node) for q in questions]
        answers = w.scorer_answers([s] + [c.state for c in children])  # the children's answers, prefetched
        for letter in dict.fromkeys([answers[0]] + letters):
            children.append(Node(w.step(s, Answer(letter)), node))
        for c in children:
            c.reward = self.rewarder(c.state)
        self.nodes += len(children)
        node.children = children

    def select(self) -> list[Node]:
        path, node = [self.root], self.root
        while node.children is not None and not self.world.is_terminal(node.state):
            live = [c for c in node.children if not c.exhausted]
            unvisited = [c for c in live if c.visits == 0]
            if unvisited:
                node = unvisited[_argmax(np.array([c.reward for c in unvisited]), self.rng)]
            else:
                scores = uct_scores([c.value for c in live], [c.visits for c in live], node.visits, self.cfg.c_uct)
                node = live[_argmax(scores, self.rng)]
            path.append(node)
        return path

    def rollout_child(self, node: Node) -> Node:
        live = [c for c in node.children if not c.exhausted] or node.children
        asks = [c for c in live if c.state.answer is None]
        answers = [c for c in live if c.state.answer is not None]
        if self.cfg.rollout == "random":
            if asks:
                return asks[int(self.rng.integers(len(asks)))]
        else:  # greedy among the questions that reveal something new; answer when none does
            gaining = [c for c in asks if c.state.turns[-1].new] or (asks if not answers else [])
            if gaining:
                return gaining[_argmax(np.array([c.reward for c in gaining]), self.rng)]
        return answers[0]  # the scorer's answer comes first

    def simulate(self, path: list[Node]) -> list[Node]:
        node = path[-1]
        while not self.world.is_terminal(node.state):
            if node.children is None:
                self.expand(node)
            node = self.rollout_child(node)
            path.append(node)
        return path

    def backup(self, path: list[Node]) -> None:
        g = 0.0
        for node in reversed(path[1:]):
            g = node.reward + self.cfg.gamma * g
            node.visits += 1
            node.total += g
        self.root.visits += 1
        self.root.total += g
        path[-1].exhausted = True  # a terminal leaf has nothing left to explore
        for node in reversed(path):  # a node is exhausted once all its children are
            if not node.exhausted and node.children is not None and all(c.exhausted for c in node.children):
                node.exhausted = True
        leaf = path[-1]
        if leaf.visits == 1:
            self.found.append(self.trajectory(path, order=len(self.found)))

    def trajectory(self, path: list[Node], order: int) -> Trajectory:
        leaf = path[-1].state
        turns = tuple(replace(t, sig=self.rewarder.sig(t),
                              weights=tuple(float(self.rewarder.weights[i]) for i in t.new)) for t in leaf.turns)
        rewards = tuple(n.reward for n in path[1:])
        ret = sum(r * self.cfg.gamma ** t for t, r in enumerate(rewards))
        correct = leaf.answer == self.world.case.answer
        return Trajectory(self.world.case.id, turns, leaf.answer, correct, rewards, float(ret), order)

    def run(self) -> int:
        done = 0
        for _ in range(self.cfg.iterations):
            if self.root.exhausted:
                break
            self.backup(self.simulate(self.select()))
            done += 1
        return done


def mcts_search(world: ConsultationWorld, source: CandidateSource, rewarder: Rewarder, cfg: MctsConfig,
                rng: np.random.Generator, top_k: int = 1, require_correct: bool = False) -> MctsResult:
    """Search one case's consultation tree (see the module docstring); deterministic for a given ``rng`` state."""
    t0 = time.perf_counter()
    calls0 = source.calls
    search = _Search(world, source, rewarder, cfg, rng)
    iterations = search.run()
    ranked = rank_trajectories(search.found, None, require_correct)
    c = world.counters
    stats = MctsStats(iterations=iterations, nodes=search.nodes, trajectories=len(search.found),
                      patient_calls=c.patient_calls, patient_questions=c.patient_questions,
                      scorer_calls=c.scorer_calls, scorer_queries=c.scorer_queries,
                      proposal_calls=source.calls - calls0, seconds=time.perf_counter() - t0)
    root = tuple(ChildStat(c.action, c.visits, c.value, c.reward) for c in search.root.children or ())
    return MctsResult(world.case.id, ranked[0] if ranked else None, tuple(ranked[:max(top_k, 1)]), stats, root)
