#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A fleet of hosts restoring snapshots from one RADOS store: a model.

    python3 tests/bench/scale_sim.py [--seed N] [--quick] [options]

Replays a trace of restores over H hosts, each with an LRU cache of chunk
objects in front of the shared store (backend_cache.c keeps the objects,
compressed, within a byte bound), and prints tables: cache hit rates and
cluster load by chunk size, cache size, restore rate and host count; the
load on the one "names" object (a small simulation of its optimistic,
version-asserted changes); and what one gc costs. docs/scale.md reads the
numbers. --quick (scale.sh's default) replays 18 h instead of 36 and
leaves out the 1000-host row.

The catalogue. BASES golden images of 1 to 16 GiB (powers of two, the
smaller more common), each page zero, compressible (zstd about 3x) or
incompressible, in runs. Each base has CLONES clones, each rewriting DIRTY
of its pages (mostly lone pages, some runs), and every UPDATE_H hours a
base gets a new version rewriting UPDATE of its pages, its clones remade
on it. A chunk that an image rewrote in at most half its pages is a patch
over the base's whole chunk (docs/store.md, "Patches"): reading it fetches
the patch and the base; one rewritten in more than half is whole again.

The trace. Each host restores at RATE an hour for HOURS hours, the base
picked by Zipf (exponent ZIPF) over the bases, then the golden image
(half the time) or one of its clones. A restore first reads the image's
working set (a fixed part of it, WS_MIN to WS_MAX of its pages, in runs;
the same at every restore of the base: what snapfs records and
prefetches, plus the pages the clone rewrote), then lazily a further 0 to
LAZY of its pages at random, different at each restore.

Scale. Images and caches are scaled by SCALE (1/256 by default: a 16 GiB
image is simulated as 64 MiB, a 64 GiB cache as 256 MiB) while pages,
runs and chunks keep their sizes, so every per-chunk effect is exact and
only the number of chunks per image shrinks; bytes and objects are
multiplied back by 1/SCALE when printed (the catalogue's sizes, working
sets and popularity do not depend on SCALE; at 1/64 the hit rates are
within half a point of 1/256's). --scale 1 runs the real sizes (hours,
not seconds). Hosts are simulated one cache each, all of them.

Everything is deterministic for a given --seed (random.Random only, no
hash of strings). Standard library only.
"""

import argparse
import collections
import heapq
import random
import sys
import time

PAGE = 4096
KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
HDR = 16                # chunk header (docs/store.md, "Chunks")
PATCH_HDR = 16 + 32     # header and the base's key
ZSTD_RATIO = 3.0        # a compressible page, zstd level 1 (assumed)

# Page kinds.
ZERO, TEXT, RAND = 0, 1, 2


def parse_size(s):
    mult = {"k": KIB, "m": MIB, "g": GIB, "t": 1024 * GIB}
    s = s.strip().lower().rstrip("ib")
    if s and s[-1] in mult:
        return int(float(s[:-1]) * mult[s[-1]])
    return int(s)


def fmt_bytes(n):
    for unit, div in (("TiB", 1024 * GIB), ("GiB", GIB), ("MiB", MIB),
                      ("KiB", KIB)):
        if n >= div:
            return "%.3g %s" % (n / div, unit)
    return "%d B" % n


def fmt_num(n):
    if n >= 1e9:
        return "%.3gG" % (n / 1e9)
    if n >= 1e6:
        return "%.3gM" % (n / 1e6)
    if n >= 1e4:
        return "%.3gk" % (n / 1e3)
    return "%.3g" % n


def table(title, head, rows):
    print()
    print(title)
    print()
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(str(c) for c in r) + " |")
    sys.stdout.flush()


# ---- the catalogue ---------------------------------------------------------

class Base:
    """A golden image: its pages' kinds, its working set, its versions'
    rewritten pages and its clones' rewritten pages (page numbers)."""

    def __init__(self, rng, idx, size, wsf, a):
        self.idx = idx
        self.size = size                    # real bytes
        n = max(64, int(size * a.scale) // PAGE)
        self.npages = n
        kinds = bytearray(n)
        # Zero runs average 56.8 pages, data runs 15.5: pick extents so
        # that a.zero of the pages are zero.
        zp = (a.zero / 56.8) / (a.zero / 56.8 + (1 - a.zero) / 15.5)
        p = 0
        while p < n:
            if rng.random() < zp:
                run = 1 << rng.randrange(0, 9)          # 4 KiB .. 1 MiB
                kind = ZERO
            else:
                run = 1 + int(rng.expovariate(1 / 15.0))
                kind = RAND if rng.random() < a.rand else TEXT
            run = min(run, n - p)
            if kind != ZERO:
                kinds[p:p + run] = bytes([kind]) * run
            p += run
        self.kinds = kinds
        # The working set: runs of pages, wsf of the image, fixed.
        self.ws = runs_of(rng, n, wsf, 16.0)
        # Versions: the pages each update rewrote.
        self.updates = []       # list of page lists, version 1, 2, ...
        self.phase = rng.uniform(0, a.update_h)
        self.clones = [dirty_pages(rng, n, a.dirty)
                       for _ in range(a.clones)]
        self.rng_seed = rng.getrandbits(32)

    def version_at(self, hours, a):
        if a.update_h <= 0:
            return 0
        return int((hours + self.phase) // a.update_h)

    def ensure_versions(self, v, a):
        rng = random.Random(self.rng_seed * 7919 + len(self.updates))
        while len(self.updates) < v:
            self.updates.append(dirty_pages(rng, self.npages, a.update))
            rng = random.Random(self.rng_seed * 7919 + len(self.updates))


def runs_of(rng, n, frac, mean_run):
    """Pages in runs (exponential lengths, mean mean_run) until frac of n."""
    want = int(n * frac)
    got = set()
    while len(got) < want:
        run = 1 + int(rng.expovariate(1 / max(mean_run - 1, 0.01)))
        start = rng.randrange(n)
        got.update(range(start, min(n, start + run)))
    return sorted(got)


def dirty_pages(rng, n, frac):
    """A diff's pages: 3/4 lone pages, 1/4 in runs of 16 (docs/store-chunks.md
    measured both shapes; real guests lie between)."""
    want = max(1, int(n * frac))
    got = set()
    while len(got) < want:
        if rng.random() < 0.75:
            got.add(rng.randrange(n))
        else:
            s = rng.randrange(n)
            got.update(range(s, min(n, s + 16)))
    return sorted(got)


class Layout:
    """A base cut into chunks of cpp pages: each whole chunk's stored size,
    and per version and clone which chunks are patches or rewritten."""

    def __init__(self, base, cpp, a):
        self.base = base
        self.cpp = cpp
        nch = (base.npages + cpp - 1) // cpp
        self.nch = nch
        sizes = [0] * nch
        k = base.kinds
        raw = cpp * PAGE
        for i in range(nch):
            seg = k[i * cpp:(i + 1) * cpp]
            nt = seg.count(TEXT)
            nr = seg.count(RAND)
            if nt + nr == 0:
                continue
            z = nt * PAGE / ZSTD_RATIO + nr * PAGE + 64
            sizes[i] = HDR + (raw if z > raw - raw // 64 else int(z))
        self.sizes = sizes
        self.mask = max(1, cpp // 8)
        self.ws = sorted(set(p // cpp for p in base.ws))
        self.versions = [{}]            # version -> {chunk: (v, pages)}
        self.clone_ch = [count_by_chunk(c, cpp) for c in base.clones]

    def version(self, v):
        while len(self.versions) <= v:
            n = len(self.versions)
            d = dict(self.versions[-1])
            for ch, cnt in count_by_chunk(self.base.updates[n - 1],
                                          self.cpp).items():
                old = d.get(ch)
                d[ch] = (n, min(self.cpp, cnt + (old[1] if old else 0)))
            self.versions.append(d)
        return self.versions[v]

    def patch_size(self, pages):
        return PATCH_HDR + self.mask + int(pages * PAGE / 2.1)

    def objects(self, b, v, c, ch, upd):
        """The objects (key, bytes) a read of chunk ch of image (b, v, c)
        needs: none for an all-zero chunk, one whole chunk, or a patch and
        its base."""
        u = upd.get(ch)
        k = self.clone_ch[c - 1].get(ch, 0) if c else 0
        whole = self.sizes[ch]
        if u is None and not k:
            return (((b, ch), whole),) if whole else ()
        pages = (u[1] if u else 0) + k
        if 2 * pages > self.cpp:        # stored whole again
            key = (b, ch, v, c) if k else (b, ch, u[0], 0)
            return ((key, max(whole, HDR + pages * PAGE // 3)),)
        key = (b, ch, v, c, 1) if k else (b, ch, u[0], 0, 1)
        patch = (key, self.patch_size(pages))
        if not whole:
            return (patch,)
        return (patch, ((b, ch), whole))


def count_by_chunk(pages, cpp):
    d = collections.Counter()
    for p in pages:
        d[p // cpp] += 1
    return d


def make_catalogue(a):
    # Sizes and working-set shares from one generator, each base's pages
    # from its own: so the catalogue's sizes, working sets (and, in
    # make_trace, popularity) do not move with --scale, only the pages
    # each base is made of.
    rng = random.Random(a.seed)
    sizes = [1, 2, 4, 8, 16]
    weights = [5, 4, 3, 2, 1]
    bases = []
    for i in range(a.bases):
        gib = rng.choices(sizes, weights)[0]
        wsf = rng.uniform(a.ws_min, a.ws_max)
        brng = random.Random(a.seed * 1000003 + i)
        bases.append(Base(brng, i, gib * GIB, wsf, a))
    for b in bases:
        b.ensure_versions(b.version_at(a.hours, a), a)
    return bases


# ---- the trace -------------------------------------------------------------

def zipf_cdf(n, s):
    w = [1.0 / (i + 1) ** s for i in range(n)]
    t = sum(w)
    acc, out = 0.0, []
    for x in w:
        acc += x / t
        out.append(acc)
    return out


def make_trace(a, bases, hosts, per_host):
    """(hours, host, base, version, clone, lazy seed) in time order; the
    popularity rank of bases is a fixed shuffle, so size and rank are
    independent."""
    rng = random.Random(a.seed * 31 + hosts)
    order = list(range(len(bases)))
    random.Random(a.seed).shuffle(order)
    cdf = zipf_cdf(len(bases), a.zipf)
    trace = []
    for h in range(hosts):
        t = 0.0
        for _ in range(per_host):
            t = rng.uniform(0, a.hours)
            r = rng.random()
            lo, hi = 0, len(cdf) - 1
            while lo < hi:
                mid = (lo + hi) // 2
                if cdf[mid] < r:
                    lo = mid + 1
                else:
                    hi = mid
            b = order[lo]
            c = 0 if rng.random() < 0.5 or not a.clones else \
                rng.randrange(1, a.clones + 1)
            trace.append((t, h, b, c, rng.getrandbits(32)))
    trace.sort()
    out = []
    for t, h, b, c, seed in trace:
        v = bases[b].version_at(t, a)
        bases[b].ensure_versions(v, a)
        out.append((t, h, b, v, c, seed))
    return out


# ---- the replay ------------------------------------------------------------

class Stats:
    def __init__(self):
        self.restores = 0
        self.need_obj = self.need_bytes = 0     # with no cache
        self.fetch_obj = self.fetch_bytes = 0   # from the cluster
        self.pages = 0                          # pages the guest read
        self.first_bytes = 0                    # first fetch in the fleet
        self.ws_need = self.ws_fetch = 0        # of those, working set


def replay(a, bases, trace, hosts, chunk, cache_bytes):
    """Replay trace; stats over the restores after the first warm_h hours
    (caches filling), and per-host hit rates."""
    cpp = max(1, chunk // PAGE)
    layouts = {}
    cap = cache_bytes * a.scale
    caches = [collections.OrderedDict() for _ in range(hosts)]
    used = [0] * hosts
    host_need = [0] * hosts
    host_fetch = [0] * hosts
    fleet_seen = set()
    st = Stats()
    wsobjs = {}
    for t, h, b, v, c, seed in trace:
        lay = layouts.get(b)
        if lay is None:
            lay = layouts[b] = Layout(bases[b], cpp, a)
        upd = lay.version(v)
        base = bases[b]
        # Objects in the order read: the working set and the clone's own
        # pages (the same at every restore of the image), then lazy reads.
        ws = wsobjs.get((b, v, c))
        if ws is None:
            chs = list(lay.ws)
            if c:
                chs.extend(lay.clone_ch[c - 1])
            seen = set()
            objs = []
            for ch in chs:
                if ch not in seen:
                    seen.add(ch)
                    objs.extend(lay.objects(b, v, c, ch, upd))
            ws = wsobjs[(b, v, c)] = (objs, seen)
        objs = list(ws[0])
        nws = len(objs)
        seen = set(ws[1])
        rng = random.Random(seed)
        lazyf = rng.uniform(0, a.lazy)
        lazy_pages = int(base.npages * lazyf)
        pages = len(base.ws) + lazy_pages
        got = 0
        last = lay.nch - 1
        while got < lazy_pages:
            run = 1 + int(rng.expovariate(0.5))
            p = rng.randrange(base.npages)
            got += run
            for ch in (p // cpp, min(last, (p + run - 1) // cpp)):
                if ch not in seen:
                    seen.add(ch)
                    objs.extend(lay.objects(b, v, c, ch, upd))
        cache = caches[h]
        counted = t >= a.warm_h
        nobj = nbytes = fobj = fbytes = 0
        ws_need = ws_fetch = 0
        for j, (key, size) in enumerate(objs):
            if j == nws:
                ws_need, ws_fetch = nbytes, fbytes
            nobj += 1
            nbytes += size
            if key in cache:
                cache.move_to_end(key)
                continue
            fobj += 1
            fbytes += size
            if key not in fleet_seen:
                fleet_seen.add(key)
                if counted:
                    st.first_bytes += size
            cache[key] = size
            used[h] += size
            while used[h] > cap and cache:
                _, s = cache.popitem(last=False)
                used[h] -= s
        if nws >= len(objs):
            ws_need, ws_fetch = nbytes, fbytes
        if counted:
            st.ws_need += ws_need
            st.ws_fetch += ws_fetch
            st.restores += 1
            st.need_obj += nobj
            st.need_bytes += nbytes
            st.fetch_obj += fobj
            st.fetch_bytes += fbytes
            st.pages += pages
            host_need[h] += nbytes
            host_fetch[h] += fbytes
    rates = sorted(1 - host_fetch[i] / host_need[i]
                   for i in range(hosts) if host_need[i])
    return st, rates


def pct(xs, q):
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, int(q * len(xs)))]


# ---- the tables ------------------------------------------------------------

def run_row(a, bases, hosts, chunk, cache, per_host):
    trace = make_trace(a, bases, hosts, per_host)
    t0 = time.process_time()
    st, rates = replay(a, bases, trace, hosts, chunk, cache)
    cpu = time.process_time() - t0
    r = st.restores
    up = 1 / a.scale
    fleet_rate = hosts * a.rate / 3600.0        # restores a second
    per_obj = st.fetch_obj / r * up
    per_bytes = st.fetch_bytes / r * up
    return {
        "hosts": hosts, "chunk": chunk, "cache": cache, "restores": r,
        "hit": 1 - st.fetch_bytes / st.need_bytes,
        "hit_obj": 1 - st.fetch_obj / st.need_obj,
        "hit_ws": 1 - st.ws_fetch / max(1, st.ws_need),
        "hit_lazy": 1 - (st.fetch_bytes - st.ws_fetch) /
        max(1, st.need_bytes - st.ws_need),
        "p10": pct(rates, 0.10), "p50": pct(rates, 0.5),
        "p90": pct(rates, 0.9),
        "need_bytes": st.need_bytes / r * up,
        "need_obj": st.need_obj / r * up,
        "fetch_bytes": per_bytes, "fetch_obj": per_obj,
        "read_bytes": st.pages * PAGE / r * up,
        "obj_s": per_obj * fleet_rate,
        "gb_s": per_bytes * fleet_rate / 1e9,
        "first": st.first_bytes / max(1, st.fetch_bytes),
        "cpu": cpu,
    }


def cat_summary(a, bases):
    tot = sum(b.size for b in bases)
    nz = sum((b.npages - b.kinds.count(ZERO)) for b in bases) * PAGE / a.scale
    ws = sum(len(b.ws) for b in bases) * PAGE / a.scale
    print("catalogue: %d bases, %s in all (%s not zero), working sets %s "
          "(%.0f%%), %d clones each (%.1f%% of pages rewritten), a new "
          "version of each base every %g h (%.1f%% rewritten); seed %d, "
          "scale 1/%d" % (len(bases), fmt_bytes(tot), fmt_bytes(nz),
                          fmt_bytes(ws), 100 * ws / tot, a.clones,
                          100 * a.dirty, a.update_h, 100 * a.update, a.seed,
                          round(1 / a.scale)))
    print("trace: each host restores %g an hour for %g h; Zipf %.2g over "
          "bases; lazy reads 0-%.0f%% of pages after the working set; the "
          "first %g h warm the caches and are not counted"
          % (a.rate, a.hours, a.zipf, 100 * a.lazy, a.warm_h))


def chunk_table(a, bases):
    rows = []
    for chunk in a.chunks:
        r = run_row(a, bases, a.sweep_hosts, chunk, a.cache,
                    int(a.rate * a.hours))
        rows.append([fmt_bytes(chunk),
                     "%.1f%%" % (100 * r["hit"]),
                     fmt_bytes(r["read_bytes"]),
                     fmt_bytes(r["need_bytes"]), fmt_num(r["need_obj"]),
                     "%.2f" % max(r["need_obj"] * a.get_ms / 1e3 / 16,
                                  r["need_bytes"] / (a.get_mibs * MIB)),
                     fmt_bytes(r["fetch_bytes"]), fmt_num(r["fetch_obj"]),
                     fmt_num(r["obj_s"] * 1000 / a.sweep_hosts),
                     "%.2f" % (r["gb_s"] * 1000 / a.sweep_hosts),
                     "%.1f" % r["cpu"]])
    table("By chunk size: %d hosts, %s cache each; per restore: pages the "
          "guest read, objects it needs (no cache: bytes, objects) and what "
          "it fetched from the cluster; cold s: a restore's fetches with no cache at 16 in flight, %g ms each, at most %g MiB/s; cluster load scaled to 1000 hosts at "
          "%g restores/h each" % (a.sweep_hosts, fmt_bytes(a.cache), a.get_ms,
                                 a.get_mibs, a.rate),
          ["chunk", "hit (bytes)", "read by guest", "no cache", "objects",
           "cold s", "fetched", "objects", "1000 hosts: obj/s", "GB/s", "cpu s"], rows)


def cache_table(a, bases):
    rows = []
    for cache in a.caches:
        r = run_row(a, bases, a.sweep_hosts, a.chunk, cache,
                    int(a.rate * a.hours))
        rows.append([fmt_bytes(cache), "%.1f%%" % (100 * r["hit"]),
                     "%.1f%%" % (100 * r["hit_obj"]),
                     "%.1f%% / %.1f%%" % (100 * r["hit_ws"],
                                         100 * r["hit_lazy"]),
                     "%.0f / %.0f / %.0f%%" % (100 * r["p10"],
                                               100 * r["p50"],
                                               100 * r["p90"]),
                     fmt_bytes(r["fetch_bytes"]), fmt_num(r["fetch_obj"]),
                     fmt_num(r["obj_s"] * 1000 / a.sweep_hosts),
                     "%.2f" % (r["gb_s"] * 1000 / a.sweep_hosts),
                     "%.1f" % r["cpu"]])
    table("By cache size per host: %d hosts, %s chunks; hit rate in bytes "
          "and objects, in bytes of the working set and of the lazy reads, "
          "per-host hit rate p10 / p50 / p90; per restore "
          "fetched; cluster load scaled to 1000 hosts" %
          (a.sweep_hosts, fmt_bytes(a.chunk)),
          ["cache", "hit (bytes)", "hit (objects)", "working set / lazy",
           "hosts p10/p50/p90",
           "fetched", "objects", "1000 hosts: obj/s", "GB/s", "cpu s"],
          rows)


def hosts_table(a, bases):
    rows = []
    save = a.rate
    a.rate = a.hosts_rate
    for hosts in a.hosts:
        per = int(a.rate * a.hours)
        r = run_row(a, bases, hosts, a.chunk, a.cache, per)
        rows.append([hosts, r["restores"], "%.1f%%" % (100 * r["hit"]),
                     "%.0f / %.0f / %.0f%%" % (100 * r["p10"],
                                               100 * r["p50"],
                                               100 * r["p90"]),
                     "%.3g" % (hosts * a.rate / 3600.0),
                     fmt_num(r["obj_s"]), "%.2f" % r["gb_s"],
                     "%.1f%%" % (100 * r["first"]), "%.1f" % r["cpu"]])
    a.rate = save
    table("By number of hosts: %s chunks, %s cache each, %g restores/h a "
          "host; restores counted; cluster reads at that rate; share of "
          "fetched bytes no other host had fetched before" %
          (fmt_bytes(a.chunk), fmt_bytes(a.cache), a.hosts_rate),
          ["hosts", "restores", "hit (bytes)", "hosts p10/p50/p90",
           "restores/s", "cluster obj/s", "GB/s", "first in fleet",
           "cpu s"], rows)


# ---- the names object --------------------------------------------------------

def rate_table(a, bases):
    rows = []
    for cache, rate in [(c, r) for c in a.rate_caches for r in a.rates]:
        save = a.rate
        a.rate = rate
        r = run_row(a, bases, a.rate_hosts, a.chunk, cache,
                    int(rate * a.hours))
        a.rate = save
        rows.append([fmt_bytes(cache), "%g" % rate,
                     "%.1f%%" % (100 * r["hit"]),
                     "%.1f%% / %.1f%%" % (100 * r["hit_ws"],
                                         100 * r["hit_lazy"]),
                     fmt_bytes(r["fetch_bytes"]), fmt_num(r["fetch_obj"]),
                     "%.3g" % (1000 * rate / 3600.0),
                     fmt_num(r["fetch_obj"] * 1000 * rate / 3600.0),
                     "%.2f" % (r["fetch_bytes"] * 1000 * rate / 3600.0 /
                               1e9), "%.1f" % r["cpu"]])
    table("By restores an hour per host: %d hosts, %s chunks; hit rate "
          "(all, working set / lazy), fetched per restore, cluster load "
          "scaled to 1000 hosts" % (a.rate_hosts, fmt_bytes(a.chunk)),
          ["cache", "restores/h a host", "hit (bytes)", "working set / lazy",
           "fetched", "objects", "1000 hosts: restores/s", "obj/s", "GB/s",
           "cpu s"], rows)


def names_sim(rate, read_ms, write_ms, retries, seconds, seed):
    """Changes of names arrive at rate a second (Poisson), each reads the
    object (its version) and writes asserting that version, as
    names_change() does; a commit between another change's read and its
    write makes that one start again, up to retries times (then EAGAIN).
    Returns (attempts per change, share failed, ops a second)."""
    rng = random.Random(seed)
    heap = []
    t = 0.0
    while t < seconds:
        t += rng.expovariate(rate)
        heapq.heappush(heap, (t + read_ms / 1e3, t, 1))  # (read done, ...)
    # Each attempt: read completes at tr (version read), commits at
    # tr + write; it succeeds if no commit landed in (tr, tc].
    commits = []            # times of successful commits, increasing
    events = []
    for tr, t0, k in heap:
        events.append((tr + write_ms / 1e3, tr, k))
    heapq.heapify(events)
    done = failed = attempts = 0
    last = -1.0
    while events:
        tc, tr, k = heapq.heappop(events)
        attempts += 1
        if last <= tr:
            last = tc
            done += 1
            continue
        if k >= retries:
            failed += 1
            continue
        nr = tc + read_ms / 1e3
        heapq.heappush(events, (nr + write_ms / 1e3, nr, k + 1))
    n = done + failed
    return attempts / max(1, n), failed / max(1, n), attempts * 2 / seconds


def names_table(a):
    rows = []
    cases = [(h, a.snap_rate) for h in a.hosts] + \
        [(a.hosts[-1], r) for r in a.snap_rates]
    pages = -(-a.snapshots // 256)      # LIST_PAGE in meta_rados_names.c
    for hosts, srate in cases:
        snaps = hosts * srate / 3600.0
        restores = hosts * a.rate / 3600.0
        # Per restore: the directory's stat and each file's lookup (one
        # omap read, and one listing of the image's names for nlink); per
        # host a listing of the snapshots every list_s seconds.
        reads = restores * (1 + 2 * a.files) + hosts / a.list_s * pages
        # Per snapshot kept: mkdir and a link per file; per snapshot
        # removed: an unlink per file and the rmdir (steady state: as
        # many removed as made).
        changes = snaps * 2 * (1 + a.files)
        for wms in (a.write_ms, a.write_ms * 4):
            att, fail, ops = names_sim(changes, a.read_ms, wms, 32,
                                       a.names_seconds,
                                       a.seed + hosts) if changes else \
                (1.0, 0.0, 0.0)
            total = reads + ops
            rows.append([hosts, "%g" % srate, "%.3g" % snaps,
                         "%.4g" % changes, "%.2g" % wms,
                         "%.3g" % att, "%.2g%%" % (100 * fail),
                         fmt_num(reads), fmt_num(ops),
                         "%.0f%%" % (100 * total / a.names_ops)])
    table("The names object: %g restores/h a host; snapshots/h a host (each "
          "removed later: mkdir + %d links, %d unlinks + rmdir); changes "
          "read (%g ms) then write asserting the version (write ms below), "
          "up to 32 attempts; a listing of %d snapshots every %g s a host; "
          "load against an assumed %s small ops/s on one object" %
          (a.rate, a.files, a.files, a.read_ms, a.snapshots, a.list_s,
           fmt_num(a.names_ops)),
          ["hosts", "snapshots/h a host", "snapshots/s", "changes/s",
           "write ms", "attempts per change", "EAGAIN", "read ops/s",
           "change ops/s", "of one object"], rows)


# ---- gc --------------------------------------------------------------------

def live_set(a, lay, v):
    """The objects (key -> bytes) that image version v of lay's base and
    its clones hold."""
    upd = lay.version(v)
    live = {}
    b = lay.base.idx
    for c in range(0, a.clones + 1):
        chs = range(lay.nch) if c == 0 else lay.clone_ch[c - 1]
        for ch in chs:
            for key, size in lay.objects(b, v, c, ch, upd):
                live[key] = size
    return live


def gc_table(a, bases):
    """What one gc lists and reads, the catalogue's newest versions live;
    and the garbage one version of every base leaves."""
    rows = []
    up = 1 / a.scale
    per_day = 24.0 / a.update_h if a.update_h > 0 else 0
    for chunk in a.chunks:
        cpp = max(1, chunk // PAGE)
        cap = HDR + 32 + max(1, cpp // 8) + chunk // 2
        objs = nbytes = small_n = small_b = 0
        dead_n = dead_b = images = 0
        for b in bases:
            lay = Layout(b, cpp, a)
            v = len(b.updates)
            live = live_set(a, lay, v)
            for size in live.values():
                objs += 1
                nbytes += size
                if size <= cap:
                    small_n += 1
                    small_b += size
            if v:
                old = live_set(a, lay, v - 1)
                for key, size in old.items():
                    if key not in live:
                        dead_n += 1
                        dead_b += size
            images += 1 + a.clones
        objs *= up
        # mark: per image its nlink (a listing of names), its head, its
        # chain (2 deltas assumed); per live key one read op for its
        # patch's base (reading the whole object when at most cap bytes);
        # sweep: list every object (1024 a page), then one stat per object
        # listed.
        ops = images * 4 + objs + objs / 1024 + objs
        secs = ops / a.gc_ops
        vers = sum(1 for b in bases if b.updates)
        scale = len(bases) / max(1, vers) * up
        rows.append([fmt_bytes(chunk), fmt_num(images), fmt_num(objs),
                     fmt_bytes(nbytes * up),
                     fmt_num(small_n * up), fmt_bytes(small_b * up),
                     fmt_num(ops), "%.0f" % secs,
                     fmt_num(dead_n * scale * per_day),
                     fmt_bytes(dead_b * scale * per_day)])
    table("One gc of the catalogue (%d bases, %d clones each, the newest "
          "version of each live): chunk objects listed (garbage adds to "
          "them), live objects read whole for their patch base (those of at "
          "most half a chunk and the header), RADOS ops, seconds at an "
          "assumed %s ops/s for one gc client; garbage a day the versions "
          "leave (every %g h a base)" %
          (len(bases), a.clones, fmt_num(a.gc_ops), a.update_h),
          ["chunk", "images", "chunk objects", "stored", "read whole",
           "bytes read", "ops", "seconds", "garbage objects/day",
           "garbage/day"], rows)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--quick", action="store_true",
                   help="smaller runs (the default of scale.sh)")
    p.add_argument("--scale", type=float, default=1 / 256.0)
    p.add_argument("--bases", type=int, default=100)
    p.add_argument("--clones", type=int, default=4)
    p.add_argument("--dirty", type=float, default=0.01)
    p.add_argument("--update", type=float, default=0.02)
    p.add_argument("--update-h", type=float, default=24.0)
    p.add_argument("--zero", type=float, default=0.5,
                   help="share of pages that are zero")
    p.add_argument("--rand", type=float, default=0.2,
                   help="share of data extents incompressible")
    p.add_argument("--ws-min", type=float, default=0.05)
    p.add_argument("--ws-max", type=float, default=0.30)
    p.add_argument("--lazy", type=float, default=0.10)
    p.add_argument("--zipf", type=float, default=1.0)
    p.add_argument("--rate", type=float, default=24.0,
                   help="restores an hour per host")
    p.add_argument("--hosts-rate", type=float, default=6.0,
                   help="restores an hour per host in the host sweep")
    p.add_argument("--hours", type=float, default=36.0)
    p.add_argument("--warm-h", type=float, default=12.0)
    p.add_argument("--hosts", default="10,100,1000")
    p.add_argument("--sweep-hosts", type=int, default=20)
    p.add_argument("--rates", default="6,24,96",
                   help="restores/h a host, tried on --rate-hosts hosts")
    p.add_argument("--rate-hosts", type=int, default=20)
    p.add_argument("--rate-caches", default="16g,64g")
    p.add_argument("--chunk", default="64k")
    p.add_argument("--chunks", default="16k,64k,256k,1m")
    p.add_argument("--cache", default="16g")
    p.add_argument("--caches", default="4g,16g,64g,256g")
    p.add_argument("--snap-rate", type=float, default=1.0,
                   help="snapshots an hour per host")
    p.add_argument("--snap-rates", default="60,600",
                   help="snapshots/h a host, also tried at the most hosts")
    p.add_argument("--snapshots", type=int, default=10000,
                   help="snapshots in the store (listings)")
    p.add_argument("--files", type=int, default=3)
    p.add_argument("--list-s", type=float, default=60.0)
    p.add_argument("--read-ms", type=float, default=0.2)
    p.add_argument("--write-ms", type=float, default=1.1)
    p.add_argument("--names-ops", type=float, default=3000.0)
    p.add_argument("--names-seconds", type=float, default=60.0)
    p.add_argument("--get-ms", type=float, default=1.1,
                   help="a chunk get with 16 in flight (ceph.md)")
    p.add_argument("--get-mibs", type=float, default=850.0,
                   help="one client's read MiB/s, 16 in flight (ceph.md)")
    p.add_argument("--gc-ops", type=float, default=15000.0)
    p.add_argument("--only", default="chunk,cache,rate,hosts,names,gc")
    a = p.parse_args()
    if a.quick:
        a.hours, a.warm_h = 18.0, 6.0
        if a.hosts == "10,100,1000":
            a.hosts = "10,100"
    a.chunk = parse_size(a.chunk)
    a.cache = parse_size(a.cache)
    a.chunks = [parse_size(x) for x in a.chunks.split(",")]
    a.caches = [parse_size(x) for x in a.caches.split(",")]
    a.hosts = [int(x) for x in a.hosts.split(",")]
    a.snap_rates = [float(x) for x in a.snap_rates.split(",")]
    a.rates = [float(x) for x in a.rates.split(",")]
    a.rate_caches = [parse_size(x) for x in a.rate_caches.split(",")]
    only = a.only.split(",")
    bases = make_catalogue(a)
    cat_summary(a, bases)
    if "chunk" in only:
        chunk_table(a, bases)
    if "cache" in only:
        cache_table(a, bases)
    if "rate" in only:
        rate_table(a, bases)
    if "hosts" in only:
        hosts_table(a, bases)
    if "names" in only:
        names_table(a)
    if "gc" in only:
        gc_table(a, bases)
    return 0


if __name__ == "__main__":
    sys.exit(main())
