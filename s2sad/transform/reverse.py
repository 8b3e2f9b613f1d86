"""Reverse mode: normalized code -> adjoint code.

In: a normalized FunctionDef and its `Analysis`. Out: a FunctionDef
`f_vjp(*params, _out_bar) -> (out, (param_bar, ...))` made of

  1. the forward sweep: the primal statements, plus a push of each value
     the reverse sweep reads and the forward sweep later overwrites (the
     to-be-recorded rule: nothing else goes on the tape);
  2. the reverse sweep: for each statement, last first, its adjoint (from
     the rule table), then the pop that restores what it overwrote.

Loops run backwards: `range` loops over the same indices reversed, `while`
loops for the counted number of trips. Branches re-read their condition.
Calls to user functions call their own generated `_vjp`.
Next stage: `optimize`/`emit`.
"""

import copy
import dataclasses

import gast

from .. import rules
from ..ir import types as T
from ..analysis import atom_name, binop_func, call_func, is_nested_call, is_user_call
from ..analysis import names_in as analysis_names
from ..ir import meta, nested
from ..ir.names import assigns
from .contributions import first_contributions, first_slice_contributions, written_in_place
from ..runtime import SHAPE_ARGS
from ..errors import NonDifferentiableError
from ..normalize import DerivedNames, assign, const, name


def parse_stmt(text):
    return gast.parse(text).body[0]


def parse_expr(text):
    return gast.parse(text, mode="eval").body


class Reverse:
    def __init__(self, fn, analysis, compiler, parsed):
        self.fn, self.an, self.compiler, self.parsed = fn, analysis, compiler, parsed
        self.reads = set()
        self.shape_reads = set()  # names whose shape alone the reverse sweep reads
        self.names = DerivedNames(fn, "bar")
        self.restores = []  # placeholders resolved once `reads` is known
        self.ans_types = {}
        self.remat = set()
        self.branches = []
        self.untaped = set()  # (id of a primal statement, v): nothing reads the value of v it overwrote

    # ---- names ---------------------------------------------------------------
    def bar(self, v):
        return self.names.of(v)

    def fresh(self, stem):
        return self.names.fresh(stem)

    def ty(self, node_or_name):
        if isinstance(node_or_name, gast.Name) and node_or_name.id in self.ans_types:
            return self.ans_types[node_or_name.id]
        if isinstance(node_or_name, str):
            return self.an.types.get(node_or_name, T.UNKNOWN)
        return self.an.type_of(node_or_name)

    def active(self, node):
        v = atom_name(node) if not isinstance(node, str) else node
        return v is not None and v in self.an.active

    def read(self, node):
        self.reads.update(n.id for n in gast.walk(node) if isinstance(n, gast.Name)
                          and not meta.is_global(n))

    def read_values(self, expr):
        """Read what a rule's adjoint expression reads, the helpers' shape arguments as shapes."""
        def visit(node):
            if isinstance(node, gast.Call) and isinstance(node.func, gast.Name) and node.func.id in SHAPE_ARGS:
                k = SHAPE_ARGS[node.func.id]
                for n, arg in enumerate(node.args):
                    if n == k and isinstance(arg, gast.Name):
                        self.read_shape(arg.id)
                    else:
                        visit(arg)
                for kw in node.keywords:
                    visit(kw.value)
            elif isinstance(node, gast.Name):
                self.read(node)
            else:
                for child in gast.iter_child_nodes(node):
                    visit(child)
        visit(expr)

    def read_shape(self, v):
        """The reverse sweep reads v's shape: where v is overwritten, only its shape is taped."""
        if self.ty(v).is_array:
            self.shape_reads.add(v)
        else:
            self.read(name(v))

    # ---- the whole function -----------------------------------------------------
    def first_definitions(self):
        """Top-level assignments that give a name its first value: nothing older to save."""
        seen, first = set(self.an.params), set()
        for s in self.fn.body:
            if isinstance(s, gast.Assign) and isinstance(s.targets[0], gast.Name):
                seen.update(analysis_names(s.value))
                if s.targets[0].id not in seen:
                    first.add(id(s))
            seen.update(n.id for n in gast.walk(s) if isinstance(n, gast.Name))
        return first

    def run(self, name_):
        fn = self.fn
        self.first = self.first_definitions()
        body, ret = fn.body[:-1], fn.body[-1]
        self.while_counters = {}
        reverse = self.reverse_block(body, fn.body)
        # the output's adjoint is the seed
        seed, out_bar = [], "_out_bar"
        outs = ret.value.elts if isinstance(ret.value, gast.Tuple) else [ret.value]
        if getattr(self, "aux", False):
            outs = outs[:1]
        for i, out in enumerate(outs):
            if self.active(out):
                g = name(out_bar) if not isinstance(ret.value, gast.Tuple) or getattr(self, "aux", False) else \
                    gast.Subscript(value=name(out_bar), slice=const(i), ctx=gast.Load())
                seed.append(self.accumulate(out.id, g))
        inits = self.init_adjoints(fn.body, top=True)
        sweep = self.final_forms(inits + seed + reverse)
        self.settle(sweep)
        self.untaped = self.restored_unread(sweep)
        forward = self.forward_block(body)
        result_value = ret.value
        if any(isinstance(n, gast.Name) for n in gast.walk(ret.value)):
            self.result_name = self.fresh("result")
            forward.append(assign(self.result_name, ret.value))
            result_value = name(self.result_name)
        params = self.an.params
        defined_first = {s.targets[0].id for s in body if id(s) in self.first}
        pushed = {c.args[1].id for st in forward for c in gast.walk(st) if isinstance(c, gast.Call)
                  and isinstance(c.func, gast.Name) and c.func.id in ("push", "push_shape")
                  and isinstance(c.args[1], gast.Name)}
        taped = sorted(v for v in pushed if v not in params and v not in defined_first)
        # a value returned from inside a branch or loop may be unset on other paths: Numba needs
        # every variable typed on every path, so it starts as a placeholder of its type
        returns_early = "_returned" in self.an.types and "_retval" in self.an.types
        preinit = [s for s in (self.placeholder(v) for v in taped + (["_retval"] if returns_early else []))
                   if s is not None]
        tape = []  # `_tape = Tape()` is added by `transform` once the pops are known
        grads = gast.Tuple(elts=[name(self.bar(p)) if p in self.an.wrt else const(0.0) for p in params],
                           ctx=gast.Load())
        result = gast.Return(value=gast.Tuple(elts=[result_value, grads], ctx=gast.Load()))
        for s in sweep:
            meta.put(s, meta.Section("reverse sweep"))
        new_body = tape + preinit + forward + sweep + [result]
        args = copy.deepcopy(fn.args)
        args.args.append(name(out_bar, False))
        args.args[-1].ctx = gast.Param()
        new = gast.FunctionDef(name=name_, args=args, body=new_body, decorator_list=[], returns=None,
                               type_comment=None, type_params=[])
        return gast.copy_location(new, fn)

    def placeholder(self, v):
        """Give a taped variable a value of its type before its first push (None where its type is
        not known: bound at least, for plain Python)."""
        ty = self.ty(v)
        value = T.placeholder(ty) or (None if ty.known else "None")
        return None if value is None else parse_stmt(f"{v} = {value}")

    # ---- adjoint initialization ---------------------------------------------------
    def init_adjoints(self, block, top=False):
        """Zero the adjoints of active names that live in this block."""
        out = []
        owners = {v for v in self.an.active if self.an.scope.get(v) == (None if top else id(block))}
        if top:
            owners |= set(self.an.wrt)
        for v in sorted(owners, key=lambda v: (v not in self.an.params, v)):
            ty = self.ty(v)
            if ty.is_scalar:
                value = parse_expr("0.0")
            else:
                value = parse_expr(f"zeros_like({v})" if not ty.is_array else f"np.zeros_like({v}, dtype=np.float64)")
            shape_of = v if not ty.is_scalar and not top else None
            out.append(meta.put(assign(self.bar(v), value), meta.AdjointInit(shape_of=shape_of)))
        return out

    # ---- reverse sweep -------------------------------------------------------------
    def reverse_block(self, body, block):
        out = []
        for s in reversed(body):
            out += self.reverse_stmt(s)
        return out

    def reverse_stmt(self, s):
        self.current = s
        if isinstance(s, gast.Assign):
            out = self.reverse_assign(s)
        elif isinstance(s, gast.If):
            # the condition is read (and so taped) only if a branch's reverse does something: see `settle`
            body = self.init_adjoints(s.body) + self.reverse_block(s.body, s.body)
            orelse = self.init_adjoints(s.orelse) + self.reverse_block(s.orelse, s.orelse)
            node = meta.put(gast.If(test=s.test, body=body or [gast.Pass()], orelse=orelse), meta.Branch())
            self.branches.append(node)
            out = [node]
        elif isinstance(s, gast.For):
            out = self.reverse_for(s)
        elif isinstance(s, gast.While):
            counter = self.fresh("trips")
            self.an.types[counter] = T.INT
            self.while_counters[id(s)] = counter
            self.read(name(counter))
            body = self.loop_body(s.body, None)
            loop = gast.For(target=name(self.fresh("trip"), True),
                            iter=parse_expr(f"range({counter})"), body=body or [gast.Pass()], orelse=[],
                            type_comment=None)
            meta.put(loop, meta.ReverseOf(id(s)))
            out = [loop, self.restore_marker("name", counter, s)]
        elif isinstance(s, (gast.Pass, gast.Assert)):  # an empty branch; an assertion checked going forward
            return []
        elif isinstance(s, gast.Expr):
            raise NonDifferentiableError(
                "reverse mode over generated reverse-mode code (a tape push) is not supported; "
                "s2sad differentiates gradients in forward mode (jacfwd, jvp, grad of grad)")
        else:
            raise AssertionError(f"unexpected statement {type(s).__name__}")
        if out and hasattr(s, "lineno"):
            note = self.parsed.cites(s)
            for node in out:
                gast.copy_location(node, s)
                if note:
                    meta.put(node, meta.Cites(note))
        return out

    def reverse_for(self, s):
        start, stop, step = s.iter.args
        for a in (start, stop, step):
            self.read(a)
        i = s.target.id
        body = self.loop_body(s.body, i)
        unit = step.value if isinstance(step, gast.Constant) and step.value in (1, -1) else None
        if unit is not None:  # range(a, b, 1) backwards is range(b - 1, a - 1, -1), empty when it is
            def shift(e):
                if isinstance(e, gast.Constant):
                    return const(e.value - unit)
                return gast.BinOp(left=copy.deepcopy(e), op=gast.Sub() if unit == 1 else gast.Add(), right=const(1))
            rng = gast.Call(func=name("range"), args=[shift(stop), shift(start), const(-unit)], keywords=[])
        else:
            rng = gast.Call(func=name("reversed_range"), args=[copy.deepcopy(a) for a in (start, stop, step)],
                            keywords=[])
        loop = gast.For(target=name(i, True), iter=rng, body=body or [gast.Pass()], orelse=[], type_comment=None)
        meta.put(loop, meta.ReverseOf(id(s)))
        if unit == 1:  # the trips in the primal's order, should the optimizer find they commute
            meta.put(loop, meta.Upward(copy.deepcopy(start), copy.deepcopy(stop)))
        return [loop] + ([self.restore_marker("name", i, s)] if self.index_escapes(s) else [])

    def index_escapes(self, loop):
        """Is the loop variable mentioned outside this loop (so its older value may be needed)?"""
        i = loop.target.id
        inside = sum(1 for n in gast.walk(loop) if isinstance(n, gast.Name) and n.id == i)
        total = sum(1 for s in self.fn.body for n in gast.walk(s) if isinstance(n, gast.Name) and n.id == i)
        return total > inside

    def loop_body(self, body, index):
        """Reverse of one iteration: recompute cheap values, zero local adjoints, then the adjoints."""
        remat = self.rematerializable(body, index)
        self.remat.update(remat)
        markers = []
        for stmt in body:
            if isinstance(stmt, gast.Assign) and isinstance(stmt.targets[0], gast.Name) \
                    and stmt.targets[0].id in remat:
                markers.append(meta.put(gast.Pass(), meta.Remat(stmt)))
        return markers + self.init_adjoints(body) + self.reverse_block(body, body)

    def rematerializable(self, body, index):
        """Values of this iteration cheaper to recompute in the reverse sweep than to tape.

        `t = rhs` qualifies when it is t's only assignment, t lives in this
        body, and every operand of rhs still holds its value when the reverse
        of the iteration starts: it is not assigned in the loop (arrays: not
        written), or it is the loop index, or it is itself recomputed.
        """
        assigned = set()  # names bound in the loop, and arrays written in place (`y[i] = ...`)
        for node in body:
            for n in gast.walk(node):
                if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Store):
                    assigned.add(n.id)
                elif isinstance(n, gast.Subscript) and isinstance(n.ctx, gast.Store):
                    assigned.add(n.value.id)
        written = {t.value.id for t in gast.walk(self.fn) if isinstance(t, gast.Subscript)
                   and isinstance(t.ctx, gast.Store)}
        remat = set()
        for stmt in body:
            if not (isinstance(stmt, gast.Assign) and isinstance(stmt.targets[0], gast.Name)):
                continue
            t = stmt.targets[0].id
            if self.an.assign_count.get(t) != 1 or self.an.scope.get(t) != id(body) or t in self.an.params \
                    or t in written:  # recomputing would lose the in-place writes
                continue
            rhs = stmt.value
            if isinstance(rhs, gast.Call) and (is_user_call(rhs) or not _cheap_call(rhs)):
                continue
            operands = analysis_names(rhs)
            if all(o == index or o in remat or o not in assigned for o in operands):
                remat.add(t)
        return remat

    def final_forms(self, sweep):
        """The reverse sweep with each adjoint's first contribution an assignment (see
        transform.contributions); the shapes its remaining zeroings read are read."""
        writers = written_in_place(gast.Module(body=self.fn.body + sweep, type_ignores=[]))
        live_out = {self.bar(p) for p in self.an.wrt}
        sweep = first_contributions(sweep, lambda s: meta.get(s, meta.AdjointInit) is not None, writers, live_out)
        for node in (n for s in sweep for n in gast.walk(s)):
            init = meta.get(node, meta.AdjointInit)
            if init is not None and init.shape_of is not None:
                self.read_shape(init.shape_of)
        return sweep

    def settle(self, reverse):
        """Decide which branches and recomputations the reverse sweep needs; both add reads."""
        while True:
            before = len(self.reads)
            for node in self.branches:
                if not meta.get(node, meta.Branch).needed and self.does_work(node.body + node.orelse):
                    meta.put(node, meta.Branch(needed=True))
                    self.read(node.test)
            self.resolve_remat(reverse)
            if len(self.reads) == before:
                return

    def restored_unread(self, sweep):
        """The restores of the settled sweep that nothing after them reads (the value or the
        shape), as (id of the primal statement, name): the sweep may read the name, but not the
        value that statement overwrote (`_n = min(_n, len(w))`, then a loop over range(_n)), so
        the statement tapes nothing. Each statement pushes as many times going forward as its
        reverse pops, so leaving out one statement's pushes and pops keeps the others paired."""
        unread = set()

        def reads(node):
            """Names a settled sweep statement reads once its markers are resolved."""
            restore, remat = meta.get(node, meta.Restore), meta.get(node, meta.Remat)
            branch = meta.get(node, meta.Branch)
            if restore is not None:   # a pop reads nothing but an item's array and index
                y_idx = restore.what if restore.kind == "item" and restore.what[0] in self.reads else None
                return {y_idx[0]} | set(analysis_names(y_idx[1])) if y_idx else set()
            if remat is not None:
                return set(analysis_names(remat.stmt.value)) if remat.needed else set()
            if branch is not None and not branch.needed or self.idle(node):
                return set()
            if isinstance(node, (gast.If, gast.While, gast.For)):
                heads = [node.test] if not isinstance(node, gast.For) else [node.iter]
                return set().union(*(set(analysis_names(h)) for h in heads),
                                   *(reads(s) for s in node.body + node.orelse))
            return {n.id for n in gast.walk(node) if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Load)}

        def visit(stmts, outside):
            """A block, last statement first; `outside`: what may run after it (for a loop body,
            the loop's next trips too) reads."""
            later = set(outside)
            for s in reversed(stmts):
                restore, branch = meta.get(s, meta.Restore), meta.get(s, meta.Branch)
                if restore is not None and restore.kind == "name" and restore.what not in later:
                    unread.add((restore.stmt, restore.what))
                read = reads(s)
                if isinstance(s, (gast.If, gast.While, gast.For)) and (branch is None or branch.needed) \
                        and not self.idle(s):
                    inner = later | read if isinstance(s, (gast.For, gast.While)) else later
                    visit(s.body, inner)
                    visit(s.orelse, inner)
                later |= read

        visit(sweep, set())
        return unread

    def idle(self, node):
        """Is `node` a loop of the reverse sweep whose trips do nothing (a `while` loop whose
        reverse has no adjoint to carry)? It goes, and reads nothing: not its trip count."""
        return meta.get(node, meta.ReverseOf) is not None and not self.does_work(node.body)

    def does_work(self, stmts):
        for s in stmts:
            restore, remat = meta.get(s, meta.Restore), meta.get(s, meta.Remat)
            if restore is not None:
                kind, what = restore.kind, restore.what
                if (kind == "name" and (self.needs_push(what) or self.needs_shape(what))) \
                        or (kind == "item" and what[0] in self.reads):
                    return True
            elif remat is not None:
                if remat.needed:
                    return True
            elif meta.get(s, meta.Branch) is not None or meta.get(s, meta.ReverseOf) is not None:
                if self.does_work(s.body + s.orelse):
                    return True
            elif not isinstance(s, gast.Pass):
                init = meta.get(s, meta.AdjointInit)
                if init is None or init.reset:   # a zeroing at the top of a block is no work
                    return True
        return False

    def resolve_remat(self, tree_body):
        markers = [n for s in tree_body for n in gast.walk(s) if meta.get(n, meta.Remat) is not None]
        for marker in reversed(markers):
            remat = meta.get(marker, meta.Remat)
            if remat.stmt.targets[0].id in self.reads:
                meta.put(marker, dataclasses.replace(remat, needed=True))
                self.read(remat.stmt.value)

    def reverse_assign(self, s):
        target, rhs = s.targets[0], s.value
        out = []
        if isinstance(target, gast.Name):
            v = target.id
            self_referential = v in analysis_names(rhs)
            if v in self.an.active:
                g = name(self.bar(v))
                other = self.passes_through(rhs, v) if self_referential else None
                if other is not None:
                    # `v = v + e`, `v = e + v`, `v = v - e` with e a number: v's adjoint passes
                    # through as it is, e's comes from it (the old v, restored, has the same shape)
                    if self.active(other):   # a number: the sum of the adjoint over v's elements
                        part = g if self.ty(v).is_scalar else gast.Call(func=parse_expr("np.sum"), args=[g],
                                                                        keywords=[])
                        if isinstance(rhs.op, gast.Sub):
                            part = gast.UnaryOp(op=gast.USub(), operand=part)
                        out.append(self.accumulate(other.id, part))
                    if id(s) not in self.first:
                        out.append(self.restore_marker("name", v, s))
                    return out
                if self_referential:
                    # `v = f(v, ...)`: the adjoint reads the old v, so restore it first,
                    # keeping the new value for rules that read `ans`
                    saved, ans = self.fresh("g"), self.fresh("ans")
                    self.ans_types[ans] = self.ty(v)
                    adjoint = self.adjoint(rhs, name(saved), name(ans))
                    out.append(assign(saved, g))
                    if any(isinstance(n, gast.Name) and n.id == ans for a in adjoint for n in gast.walk(a)):
                        out.append(assign(ans, name(v)))
                        self.read(name(v))  # the new value, kept before the restore: v must be taped
                    out.append(self.restore_marker("name", v, s))
                    out.append(self.reset(v, restored=True))
                    return out + adjoint
                out += self.adjoint(rhs, g, target)
            if id(s) not in self.first:
                out.append(self.restore_marker("name", v, s))
            if v in self.an.active and self.needs_reset(v):
                out.append(self.reset(v, restored=id(s) not in self.first))
        elif isinstance(target, gast.Tuple):  # a, b = user_function(...)
            names = [e.id for e in target.elts]
            if any(v in self.an.active for v in names):
                # save the outputs' adjoints and restore the old values first: the call may read
                # (and its adjoint add to) the very names it assigns, as in `h, c = step(w, h, c)`
                seeds = []
                for v in names:
                    if v in self.an.active:
                        saved = self.fresh("g")
                        out.append(assign(saved, name(self.bar(v))))
                        seeds.append(name(saved))
                    else:
                        seeds.append(const(0.0))
                out += [self.restore_marker("name", v, s) for v in reversed(names)]  # pops: last pushed first
                out += [self.reset(v, restored=True) for v in names if v in self.an.active and self.an.overwritten(v)]
                seed = gast.Tuple(elts=seeds, ctx=gast.Load())
                if is_nested_call(rhs) and call_func(rhs).kind != "jvp":
                    out += self.nested_adjoint(rhs, seed)  # `gx, gy = grad(f, argnums=(0, 1))(x, y)`
                else:
                    out += self.user_adjoint(rhs, seed)
            else:
                out += [self.restore_marker("name", v, s) for v in reversed(names)]
        else:  # y[idx] = a
            y, idx = target.value.id, target.slice
            self.read(idx)
            if y in self.an.active:
                slot = gast.Subscript(value=name(self.bar(y)), slice=copy.deepcopy(idx), ctx=gast.Load())
                if self.active(rhs):
                    contribution = slot
                    if not self.picks_each_once(idx):
                        # an element named twice keeps one of the values written (NumPy's last)
                        contribution = gast.Call(func=name("scatter_adjoint"),
                                                 args=[name(self.bar(y)), _index_value(idx)], keywords=[])
                    if self.ty(rhs).is_scalar and not self._selects_scalar(y, idx):
                        contribution = gast.Call(func=parse_expr("np.sum"), args=[contribution], keywords=[])
                    out.append(self.accumulate(rhs.id, contribution))
                store = copy.deepcopy(slot)
                store.ctx = gast.Store()
                out.append(assign(store, const(0.0)))
            out.append(self.restore_marker("item", (y, idx), s))
        return out

    def _selects_scalar(self, array, idx):
        return self.an._subscript_type(self.ty(array), idx).is_scalar

    def needs_reset(self, v):
        """Could v_bar still receive contributions meant for an older value of v?"""
        once = self.an.assign_count.get(v, 0) == 1 and v not in self.an.params
        return not (once and (self.an.scope.get(v) is not None or v not in self.an.assigned_in_loop))

    def reset(self, v, restored):
        """`v_bar` back to zeros before contributions to v's older value arrive. Once v is restored
        (`restored`), the zeros take the shape of that older value, which may differ from the
        newer one (`h = x; h = W @ h`): v's shape is then read, so it is taped at least."""
        ty = self.ty(v)
        if ty.is_scalar:
            value, shape_of = const(0.0), None
        elif restored and not ty.known:
            # a name holding a number and then an array (`v = x[0]`, then `v = v * np.ones(3)`):
            # zeros like the older value, whichever it is
            value, shape_of = parse_expr(f"zeros_like({v})"), v
        elif restored and ty.is_array:
            value, shape_of = parse_expr(f"np.zeros_like({v}, dtype=np.float64)"), v
        else:
            value, shape_of = parse_expr(f"np.zeros_like({self.bar(v)})"), None
        return meta.put(assign(self.bar(v), value), meta.AdjointInit(reset=True, shape_of=shape_of))

    def accumulate(self, v, contribution):
        """`v_bar = v_bar + contribution` (`add_tuples(v_bar, contribution)` for a tuple v)."""
        if self.ty(v).kind == "tuple":
            return assign(self.bar(v), gast.Call(func=name("add_tuples"), args=[name(self.bar(v)), contribution],
                                                 keywords=[]))
        return assign(self.bar(v), gast.BinOp(left=name(self.bar(v)), op=gast.Add(), right=contribution))

    def passes_through(self, rhs, v):
        """The other operand e where `rhs` is `v + e`, `e + v` or `v - e` with e a number that is not
        v (v keeps its shape, and its adjoint is the result's), else None."""
        if not (isinstance(rhs, gast.BinOp) and isinstance(rhs.op, (gast.Add, gast.Sub))):
            return None
        left_v = isinstance(rhs.left, gast.Name) and rhs.left.id == v
        right_v = isinstance(rhs.right, gast.Name) and rhs.right.id == v
        if left_v == right_v or (right_v and isinstance(rhs.op, gast.Sub)):
            return None
        other = rhs.right if left_v else rhs.left
        return other if isinstance(other, gast.Constant) or self.ty(other).is_scalar else None

    def adjoint(self, rhs, g, ans):
        """Statements adding the contributions of `ans = rhs` to its operands' adjoints."""
        if isinstance(rhs, gast.Name):
            return [self.accumulate(rhs.id, g)] if self.active(rhs) else []
        if isinstance(rhs, gast.BinOp):
            rule = rules.lookup(binop_func(rhs.op))
            return self.apply_rule(rule, {"x": rhs.left, "y": rhs.right}, g, ans)
        if isinstance(rhs, gast.UnaryOp):
            if isinstance(rhs.op, gast.USub) and self.active(rhs.operand):
                minus_g = gast.UnaryOp(op=gast.USub(), operand=g)
                meta.put(minus_g, meta.ShapedLike(rhs.operand.id))  # for contributions.first_contributions
                return [self.accumulate(rhs.operand.id, minus_g)]
            return []
        if isinstance(rhs, (gast.Tuple, gast.List)):
            return [self.accumulate(e.id, gast.Subscript(value=g, slice=const(i), ctx=gast.Load()))
                    for i, e in enumerate(rhs.elts) if self.active(e)]
        if isinstance(rhs, gast.Subscript):
            return self.subscript_adjoint(rhs, g)
        if isinstance(rhs, gast.Call):
            if is_user_call(rhs):
                return self.user_adjoint(rhs, g)
            if is_nested_call(rhs):
                if call_func(rhs).kind == "jvp":
                    return self.user_adjoint(rhs, g)
                return self.nested_adjoint(rhs, g)
            rule = rules.lookup(call_func(rhs))
            if rule is None:
                return []
            return self.apply_rule(rule, rules.bind(rule, rhs), g, ans)
        return []

    def apply_rule(self, rule, bound, g, ans):
        out = []
        mapping = dict(bound)
        mapping["g"], mapping["ans"] = g, ans
        for param in rule.tangent:
            if param not in rule.adjoint and bound.get(param) is not None and self.active(bound[param]):
                raise NonDifferentiableError(f"no reverse-mode rule for argument `{param}` of this call; "
                                             "use forward mode (jvp/jacfwd)")
        for param, template in rule.adjoint_for(bound, self.ty).items():
            operand = bound.get(param)
            if operand is None or not self.active(operand):
                continue
            expr = rules.expand(template, mapping)
            self.read_values(expr)
            if rule.broadcasts and self.shaped_like_result(operand, bound):
                expr = meta.put(copy.copy(expr), meta.ShapedLike(operand.id))  # for contributions.first_contributions
            elif rule.broadcasts:
                expr = self.unbroadcast(expr, operand, ans)
            out.append(self.accumulate(operand.id, expr))
        return out

    def shaped_like_result(self, operand, bound):
        """Has an elementwise result `operand`'s shape for sure? It has when every other operand
        is a scalar or `operand` itself: nothing else broadcasts, so the adjoint needs no
        `unbroadcast` (whose shape read would otherwise keep the operand on the tape)."""
        def same(b):
            return b is operand or (isinstance(b, gast.Name) and isinstance(operand, gast.Name)
                                    and b.id == operand.id)
        return all(b is None or same(b) or isinstance(b, gast.Constant) or self.ty(b).is_scalar
                   for b in bound.values())

    def unbroadcast(self, expr, operand, ans):
        t_op, t_ans = self.ty(operand), self.ty(ans)
        if t_op.is_scalar and t_ans.is_scalar:
            return expr
        if t_op.is_scalar and t_ans.is_array:
            return gast.Call(func=parse_expr("np.sum"), args=[expr], keywords=[])
        if isinstance(operand, gast.Name):
            self.read_shape(operand.id)
        else:
            self.read(operand)
        return gast.Call(func=name("unbroadcast"), args=[expr, copy.deepcopy(operand)], keywords=[])

    def subscript_adjoint(self, rhs, g):
        x = rhs.value
        if not self.active(x):
            return []
        self.read(rhs.slice)
        tx = self.ty(x)
        if tx.kind == "tuple":
            where = self.parsed.where(self.current)
            raise NonDifferentiableError(
                f"{where}: s2sad cannot yet differentiate through an element of a tuple value\n"
                f"    {where.line.strip()}\n  hint: unpack the tuple where it is made: `a, b = f(...)`")
        if not self.picks_each_once(rhs.slice):
            # an index array or list may name an element twice: its adjoint adds up (np.add.at)
            return [assign(self.bar(x.id), gast.Call(func=name("add_at"), args=[
                name(self.bar(x.id)), _index_value(rhs.slice), g], keywords=[]))]
        back = _view_inverse(rhs.slice)
        if back is not None:  # x[None, :] is all of x with an axis added: take the axis off g
            return [self.accumulate(x.id, gast.Subscript(value=g, slice=back, ctx=gast.Load()))]
        slot = gast.Subscript(value=name(self.bar(x.id)), slice=copy.deepcopy(rhs.slice), ctx=gast.Load())
        store = copy.deepcopy(slot)
        store.ctx = gast.Store()
        return [assign(store, gast.BinOp(left=slot, op=gast.Add(), right=g))]

    def picks_each_once(self, index):
        """Does `index` pick each element at most once: is every part of it a slice, None, `...`
        or an int?"""
        def basic(p):
            if isinstance(p, gast.Slice) or isinstance(p, gast.Constant) and (p.value is None or p.value is Ellipsis):
                return True
            t = self.ty(p)
            return t.is_scalar and t.kind == "i"
        return all(basic(p) for p in (index.elts if isinstance(index, gast.Tuple) else [index]))

    def user_adjoint(self, call, g):
        arg_types = [self.ty(a) for a in call.args]
        wrt = [i for i, a in enumerate(call.args) if self.active(a)]
        if not wrt:
            return []
        callee = call_func(call)
        if is_nested_call(call):  # jvp(f, ...) inside: reverse over its generated forward-mode code
            callee = callee.as_function(arg_types)
        vjp_name = self.compiler.vjp_name(callee, arg_types, tuple(wrt))
        for a in call.args:
            self.read(a)
        result = self.fresh("vjp")
        out = [assign(result, gast.Call(func=name(vjp_name), args=[copy.deepcopy(a) for a in call.args] + [g],
                                        keywords=[]))]
        for i in wrt:
            part = parse_expr(f"{result}[1][{i}]")
            out.append(self.accumulate(call.args[i].id, part))
        return out

    def nested_adjoint(self, call, g):
        """Adjoint of `v = grad(f, argnums=A)(*args)`, by forward over reverse.

        The Jacobian of a gradient is a block of f's Hessian, which is
        symmetric: the cotangent v_bar pulled back to every argument is the
        derivative of the full gradient of f along v_bar placed in the A slots.
        """
        obj = call_func(call)
        types = [self.ty(a) for a in call.args]
        if not obj.is_gradient(types):
            raise NonDifferentiableError(
                f"{self.parsed.where(self.current)}: s2sad differentiates a nested gradient (grad, or "
                f"jacfwd/jacrev of a scalar function) in reverse mode, not this `{obj.kind}`\n"
                f"  hint: use forward mode (jvp/jacfwd) on the outer function")
        floats = tuple(i for i, t in enumerate(types) if t.kind == "f")
        argnums = (obj.argnums,) if isinstance(obj.argnums, int) else tuple(obj.argnums)
        full = nested.transform("grad")(obj.fun, argnums=floats, backend="python")
        wrapper = full.as_function(types)
        jvp = self.compiler.jvp_name(wrapper, types, argnums)
        for a in call.args:
            self.read(a)
        seeds = [g] if isinstance(obj.argnums, int) else \
            [gast.Subscript(value=copy.deepcopy(g), slice=const(k), ctx=gast.Load()) for k in range(len(argnums))]
        result = self.fresh("hvp")
        out = [assign(result, gast.Call(func=name(jvp), args=[copy.deepcopy(a) for a in call.args] + seeds,
                                        keywords=[]))]
        for i, a in enumerate(call.args):
            if self.active(a):
                out.append(self.accumulate(a.id, parse_expr(f"{result}[1][{floats.index(i)}]")))
        return out

    # ---- restores: pops, decided once every read is known --------------------------
    def restore_marker(self, kind, what, stmt):
        return meta.put(gast.Pass(), meta.Restore(kind, what, id(stmt)))

    def resolve_restores(self, stmts):
        """The statements with the sweep's markers resolved, once every read is known: a restore
        becomes a pop (or nothing), a recomputation its statement (or nothing), and a branch or
        loop whose reverse does nothing goes."""
        out = []
        for s in stmts:
            branch = meta.get(s, meta.Branch)
            if branch is not None and not branch.needed or self.idle(s):
                continue  # a branch or loop whose reverse does nothing
            remat = meta.get(s, meta.Remat)
            if remat is not None:
                if remat.needed:
                    out.append(copy.deepcopy(remat.stmt))
                continue
            r = meta.get(s, meta.Restore)
            if r is not None:
                kind, what = r.kind, r.what
                if kind == "name" and (r.stmt, what) in self.untaped:
                    pass   # nothing after it reads the older value
                elif kind == "name" and self.needs_push(what):
                    out.append(meta.carry(parse_stmt(f"{what} = pop(_tape, {what})"), s))
                    if self.ty(what).mixed:
                        self.compiler.not_for_numba.append(
                            f"`{what}` in {self.parsed.name} holds values of different ranks in turn (a number, "
                            "then an array), and the compiled tape would read an older value back as the "
                            "newer one's type; give the values names of their own to compile it")
                elif kind == "name" and self.needs_shape(what):
                    out.append(meta.carry(parse_stmt(f"{what} = pop_shape(_tape, {what})"), s))
                elif kind == "item" and what[0] in self.reads:
                    y, idx = what
                    slot = gast.Subscript(value=name(y), slice=copy.deepcopy(idx), ctx=gast.Store())
                    value = parse_expr("pop(_tape, 0)")
                    value.args[1] = gast.Subscript(value=name(y), slice=copy.deepcopy(idx), ctx=gast.Load())
                    out.append(meta.carry(assign(slot, value), s))
                continue
            for field in ("body", "orelse"):
                if isinstance(getattr(s, field, None), list):
                    resolved = self.resolve_restores(getattr(s, field))
                    setattr(s, field, resolved or ([gast.Pass()] if field == "body" else []))
            out.append(s)
        return out

    # ---- tapes addressed by trip ---------------------------------------------------------
    def address_tapes_by_trip(self, fn):
        """A loop that tapes the same floats on every trip reserves them all before it starts.

        `push(_tape, y)` in `for i in range(a, b)` becomes `tape_put(_tape, _base1 + (i - a), y)`
        after `_base1 = tape_reserve(_tape, b - a, 1)`, and the reverse loop, after
        `_base1 = tape_release(_tape, b - a, 1)`, reads `y = tape_get(_tape, _base1 + (i - a), y)`.
        A push costs a store where it cost a bounds check and a count kept in memory, a chain of
        dependent loads and stores from trip to trip. Only floats pushed in the loop body itself
        (not in a branch or an inner loop) move to slots; the rest keep push and pop."""
        reverse_loops = {meta.get(n, meta.ReverseOf).loop: n for n in gast.walk(fn)
                         if isinstance(n, gast.For) and meta.get(n, meta.ReverseOf) is not None}
        before = {}  # id(loop) -> statements to put before it
        loops = [n for n in gast.walk(fn) if isinstance(n, gast.For) and meta.get(n, meta.ForwardOf) is not None]
        for loop in reversed(loops):  # inner loops first (walk goes level by level)
            reverse = reverse_loops.get(meta.get(loop, meta.ForwardOf).loop)
            if any(id(n) in before for n in gast.walk(loop)):
                continue  # an inner loop reserves slots on each trip: they would sit above these
            pairs = self._tape_slots(loop, reverse)
            if not pairs:
                continue
            start, stop, _ = loop.iter.args
            i, k = loop.target.id, len(pairs)
            trips = stop if _is_zero(start) else gast.BinOp(left=copy.deepcopy(stop), op=gast.Sub(),
                                                             right=copy.deepcopy(start))
            base = self.fresh("base")
            trip = name(i) if _is_zero(start) else gast.BinOp(left=name(i), op=gast.Sub(), right=copy.deepcopy(start))
            if k > 1:
                trip = gast.BinOp(left=trip, op=gast.Mult(), right=const(k))
            for j, (push_stmt, pop_stmt) in enumerate(pairs):
                slot = gast.BinOp(left=name(base), op=gast.Add(), right=copy.deepcopy(trip))
                if j:
                    slot = gast.BinOp(left=slot, op=gast.Add(), right=const(j))
                value = push_stmt.value.args[1]
                _replace(loop.body, push_stmt, gast.Expr(value=gast.Call(
                    func=name("tape_put"), args=[name("_tape"), slot, value], keywords=[])))
                pop_stmt.value = gast.Call(func=name("tape_get"), args=[
                    name("_tape"), copy.deepcopy(slot), _loaded(pop_stmt.targets[0])], keywords=[])
            for what, node in (("tape_reserve", loop), ("tape_release", reverse)):
                before[id(node)] = assign(base, gast.Call(func=name(what), args=[
                    name("_tape"), copy.deepcopy(trips), const(k)], keywords=[]))

        def insert(stmts):
            out = []
            for st in stmts:
                if id(st) in before:
                    out.append(meta.carry(gast.copy_location(before[id(st)], st), st))
                for field in ("body", "orelse"):
                    if isinstance(getattr(st, field, None), list):
                        setattr(st, field, insert(getattr(st, field)))
                out.append(st)
            return out
        fn.body = insert(fn.body)

    def _tape_slots(self, loop, reverse):
        """The (push, pop) statement pairs of a loop and its reverse that can go to slots: floats
        (names or array items) pushed once per trip, in the loop body itself and popped in the
        reverse loop's body itself. Other pushes stay on the stack: slots are counted apart."""
        if not isinstance(loop, gast.For) or reverse is None:
            return None
        it = loop.iter
        if not (isinstance(it, gast.Call) and isinstance(it.func, gast.Name) and it.func.id == "range"
                and len(it.args) == 3 and isinstance(it.args[2], gast.Constant) and it.args[2].value == 1):
            return None
        top_pushes = [st for st in loop.body if isinstance(st, gast.Expr) and _is_tape_call(st.value, "push")]
        top_pops = [st for st in reverse.body if isinstance(st, gast.Assign) and _is_tape_call(st.value, "pop")]
        if not top_pushes or len(top_pushes) != len(top_pops):
            return None
        i = loop.target.id
        if any(assigns(st, i) for st in loop.body + reverse.body):
            return None
        pairs = []
        for push_stmt, pop_stmt in zip(top_pushes, reversed(top_pops), strict=True):  # last pushed, first popped
            pushed, target = push_stmt.value.args[1], pop_stmt.targets[0]
            if gast.dump(_loaded(pushed)) != gast.dump(_loaded(target)):
                return None  # not each other's: leave the loop alone
            if self.ty(pushed) == T.FLOAT and isinstance(pushed, (gast.Name, gast.Subscript)):
                pairs.append((push_stmt, pop_stmt))
        return pairs

    # ---- forward sweep ---------------------------------------------------------------
    def forward_block(self, body, in_loop=False):
        out = []
        for s in body:
            out += self.forward_stmt(s, in_loop)
        return out

    def push(self, expr):
        return gast.Expr(value=gast.Call(func=name("push"), args=[name("_tape"), expr], keywords=[]))

    def needs_push(self, v):
        return v in self.reads and self.an.overwritten(v) and v not in self.remat

    def needs_shape(self, v):
        """v is overwritten and the reverse sweep reads its shape only: tape the shape."""
        # (a value the reverse sweep could recompute is not, for its shape alone: the shape is
        # taped, since it may change from trip to trip, as x[:i + 1]'s does)
        return v in self.shape_reads and v not in self.reads and self.an.overwritten(v)

    def tape_old(self, v, stmt):
        """The push that saves what the assignment `stmt` to v overwrites, if the reverse sweep
        reads that older value."""
        if (id(stmt), v) in self.untaped:
            return []
        if self.needs_push(v):
            return [self.push(name(v))]
        if self.needs_shape(v):
            return [gast.Expr(value=gast.Call(func=name("push_shape"), args=[name("_tape"), name(v)], keywords=[]))]
        return []

    def forward_stmt(self, s, in_loop):
        if isinstance(s, (gast.Expr, gast.Assert)):
            return [s]
        if isinstance(s, gast.Pass):
            return []
        if isinstance(s, gast.Assign):
            original = s  # analyses know statements by id
            if is_nested_call(s.value):  # `v = grad(f)(x)` calls the generated function computing it
                s = self.compiler.call_generated(s, [self.ty(a) for a in s.value.args])
            target = s.targets[0]
            pushes = []
            if isinstance(target, gast.Name) and id(original) not in self.first:
                pushes += self.tape_old(target.id, original)
            elif isinstance(target, gast.Tuple):
                pushes += [p for e in target.elts for p in self.tape_old(e.id, original)]
            elif isinstance(target, gast.Subscript) and target.value.id in self.reads:
                pushes.append(self.push(gast.Subscript(value=name(target.value.id),
                                                       slice=copy.deepcopy(target.slice), ctx=gast.Load())))
            return pushes + [s]
        if isinstance(s, gast.If):
            new = gast.If(test=s.test, body=self.forward_block(s.body, in_loop) or [gast.Pass()],
                          orelse=self.forward_block(s.orelse, in_loop))
            return [gast.copy_location(new, s)]
        if isinstance(s, gast.For):
            pre = self.tape_old(s.target.id, s) if self.index_escapes(s) else []
            new = gast.For(target=s.target, iter=s.iter, body=self.forward_block(s.body, True), orelse=[],
                           type_comment=None)
            meta.put(new, meta.ForwardOf(id(s)))
            return pre + [gast.copy_location(new, s)]
        if isinstance(s, gast.While):
            counter = self.while_counters[id(s)]
            self.an.assign_count[counter] = 1
            if in_loop:
                self.an.assigned_in_loop.add(counter)
            pre = self.tape_old(counter, s)
            body = self.forward_block(s.body, True) + [parse_stmt(f"{counter} = {counter} + 1")]
            new = gast.While(test=s.test, body=body, orelse=[])
            return pre + [assign(counter, const(0)), gast.copy_location(new, s)]
        raise AssertionError(type(s).__name__)


def _index_value(index):
    """An index as a value to pass: `x[:, i]` -> `(slice(None, None, None), i)`."""
    def value(p):
        if not isinstance(p, gast.Slice):
            return copy.deepcopy(p)
        bounds = [copy.deepcopy(b) if b is not None else gast.Constant(value=None, kind=None)
                  for b in (p.lower, p.upper, p.step)]
        return gast.Call(func=name("slice"), args=bounds, keywords=[])
    if isinstance(index, gast.Tuple):
        return gast.Tuple(elts=[value(p) for p in index.elts], ctx=gast.Load())
    return value(index)


def _view_inverse(index):
    """The index that takes the adjoint of `x[index]` back to x's shape, when `index` is made of
    None, `:` and `...` alone (each None becomes 0); None for any other index.

    Such a subscript is all of x with axes of length 1 added, so its adjoint is a view of g, not
    the `x_bar[None, :] = x_bar[None, :] + g` update, which Numba compiles with its general
    slice assignment (about two seconds of compiling for its shape-mismatch error message)."""
    parts = index.elts if isinstance(index, gast.Tuple) else [index]
    whole = all(isinstance(p, gast.Slice) and p.lower is None and p.upper is None and p.step is None
                or isinstance(p, gast.Constant) and p.value in (None, Ellipsis) for p in parts)
    if not whole or not any(isinstance(p, gast.Constant) and p.value is None for p in parts):
        return None
    back = [const(0) if isinstance(p, gast.Constant) and p.value is None else copy.deepcopy(p) for p in parts]
    return back[0] if len(back) == 1 else gast.Tuple(elts=back, ctx=gast.Load())


def _is_tape_call(node, kind):
    return isinstance(node, gast.Call) and isinstance(node.func, gast.Name) and node.func.id == kind \
        and node.args and isinstance(node.args[0], gast.Name) and node.args[0].id == "_tape"


def _loaded(node):
    """A copy of a target (`v`, `y[i]`) as an expression that reads it."""
    node = copy.deepcopy(node)
    for n in gast.walk(node):
        if hasattr(n, "ctx") and isinstance(n.ctx, gast.Store):
            n.ctx = gast.Load()
    return node


def _is_zero(node):
    return isinstance(node, gast.Constant) and node.value == 0 and not isinstance(node.value, bool)


def _replace(stmts, old, new):
    stmts[next(k for k, st in enumerate(stmts) if st is old)] = meta.carry(gast.copy_location(new, old), old)


def _cheap_call(call):
    """Elementwise math on values: as cheap to redo as to tape."""
    rule = rules.lookup(call_func(call))
    return rule is not None and rule.broadcasts


def transform(fn, analysis, compiler, parsed, name_, aux=False):
    rev = Reverse(fn, analysis, compiler, parsed)
    rev.aux = aux
    # while-loop counters are assigned inside loops when their loop is nested
    new = rev.run(name_)
    new.body = rev.resolve_restores(new.body)
    rev.address_tapes_by_trip(new)
    first_slice_contributions(new.body)   # once recomputed bounds (`_t8 = 2 * n`) are in place
    if any(isinstance(n, gast.Name) and n.id == "_tape" for s in new.body for n in gast.walk(s)):
        new.body.insert(0, parse_stmt("_tape = Tape()"))
    return new
