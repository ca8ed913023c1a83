#!/usr/bin/env python3
"""
bench/world.py: generate a survey world of N mail domains over the loopback fleet, and
the value every statistics view must show for it.

  world.py --domains N --seed S --out DIR [--build DIR] [--customer-names F]

Writes into DIR (incrementally; memory stays small at 1,000,000 domains):

  domains.txt     Tranco-style `rank,domain` lines, ranks 1..N
  world.test.zone the mail domains (MX, null MX, a TXT-only "nodata" domain; NXDOMAIN
                  domains are simply absent)
  fleet.test.zone the MX hosts (single labels under fleet.test, so the fleet's
                  `*.fleet.test` leaf certificates match them) with A records in
                  127.0.0.0/8 (the tail from 127.64.0.0 on, one address per own MX
                  host: up to about 25 M domains), and the implicit-MX domains (an A
                  record, no MX)
  expected.json   expected numbers per view (see expected_views() for which)
  world.json      parameters and counts (written last: its presence marks a complete world)

Shape (fractions of N, drawn per rank with a seeded RNG): five large providers (35 %:
two shared MX hosts each, 4 + 2 addresses), 300 mid-size hosting providers (12 %, Zipf
shares, one MX host with 2 addresses), a long tail with an MX host of its own (one
address; 10 % of them with a second MX: another own host or a mid provider as backup),
implicit MX (4 %), null MX (1.5 %), NXDOMAIN (2.5 %), nodata (1 %), an MX host that does
not exist (0.5 %).

`--customer-names F` (default 0: the world above, unchanged): a fraction F of the large
and mid-size providers' domains name a per-customer MX host instead of the provider's
primary host, `c<rank>.fleet.test`, with the A records of that host (the customer names
of a hosting provider, all on the provider's shared addresses). Every other draw is the
same, so the addresses are the same; each shared address is then reached by many MX
names, which `mxsurvey survey --sni all` asks one by one.

Behaviours are the fleet's seeded mix (`mxsurvey-fleet serve --seed S`): the expected
values take every address's behaviour from `mxsurvey-fleet truth` (one JSON line per
address) and the facts of each behaviour from the truth's fields, never from a copy of
the fleet's table. The large providers' addresses are chosen from the truth by behaviour
name (large providers run well-configured servers); everything else is the mix as drawn.

Pure standard library.
"""
import argparse
import bisect
import json
import os
import random
import re
import subprocess
import sys
from fractions import Fraction

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VERSION = 3  # bump when the world's shape or expected.json's format changes

PROVIDER_NET = (127 << 24) | (63 << 16)     # 127.63.0.0/16: provider addresses
TAIL_BASE = (127 << 24) | (64 << 16)        # 127.64.0.0+: one address per own MX host
TAIL_END = (128 << 24)                      # up to 127.255.255.255 (12.5 M addresses)

LARGE = [  # (share, mx1 behaviour, mx2 behaviour); None: whatever the mix gives
    (0.17, "starttls-ecdsa", "starttls-ecdsa"),
    (0.08, "starttls-rsa", "starttls-rsa"),
    (0.05, "starttls-ecdsa", "tls12-only"),
    (0.03, "starttls-rsa", "starttls-ecdsa"),
    (0.02, None, None),
]
MID_PROVIDERS, MID_SHARE = 300, 0.12
CATS = [  # category, share of N (the rest is the long tail)
    ("implicit", 0.04), ("null", 0.015), ("nxdomain", 0.025), ("nodata", 0.01), ("gone", 0.005),
]
TAIL_SECOND_OWN, TAIL_BACKUP_MID = 0.05, 0.05   # shares of tail domains with a second MX

VERSIONS = {"TLSv1": 769, "TLSv1.0": 769, "TLSv1.1": 770, "TLSv1.2": 771, "TLSv1.3": 772}
# rank_buckets of 0002_views.sql: (name, max_rank); 'all' also holds unranked domains
BUCKETS = [("all", None), ("top100", 100), ("top1k", 1000), ("top10k", 10000),
           ("top100k", 100000), ("top1m", 1000000)]
METRICS = ["funnel_open", "funnel_greeting", "funnel_ehlo", "funnel_starttls", "funnel_tls",
           "starttls_offered", "starttls_completed", "forward_secrecy", "legacy_version",
           "legacy_rc4", "legacy_3des", "legacy_dh_small", "legacy_any", "cert_trusted",
           "cert_valid", "cert_self_signed", "cert_expired", "cert_name_mismatch",
           "cert_unknown_ca", "tamper_mangled", "tamper_echo", "tamper_injection", "dane_match"]
W_SCALE = 24   # domain_w sums are kept as integers in units of 10^-24


def ip_str(n):
    return "%d.%d.%d.%d" % (n >> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255)


def mx_name(n):
    return "mx-%d-%d-%d.fleet.test" % ((n >> 16) & 255, (n >> 8) & 255, n & 255)


def fleet_bin(build):
    p = os.path.join(build, "tests", "fleet", "mxsurvey-fleet")
    if not os.access(p, os.X_OK):
        sys.exit("world.py: %s missing (build the mxsurvey-fleet target)" % p)
    return p


def truth_lines(build, cidr, seed):
    """Stream the fleet's truth lines for cidr."""
    p = subprocess.Popen([fleet_bin(build), "truth", cidr, "--seed", str(seed)],
                         stdout=subprocess.PIPE, text=True, bufsize=1 << 20)
    yield from p.stdout
    if p.wait() != 0:
        sys.exit("world.py: mxsurvey-fleet truth %s failed" % cidr)


_IDX = re.compile(r'"index":(\d+)')


class Truth:
    """Behaviour index per address, and the facts of each behaviour (from one truth line)."""

    def __init__(self, build, seed):
        self.build, self.seed = build, seed
        self.beh = {}        # index -> truth dict (of the first address seen)
        self.by_addr = {}    # provider addresses: int -> index
        self.tail = bytearray()  # tail addresses: TAIL_BASE + k -> index

    def _take(self, line):
        i = int(_IDX.search(line).group(1))
        if i not in self.beh:
            t = json.loads(line)
            for k in ("ip", "mx", "greeting_lines"):
                t.pop(k, None)
            self.beh[i] = t
        return i

    def load_providers(self):
        for line in truth_lines(self.build, ip_str(PROVIDER_NET) + "/16", self.seed):
            ip = line[line.index('"ip":"') + 6:]
            ip = ip[:ip.index('"')]
            a = [int(x) for x in ip.split(".")]
            self.by_addr[(a[0] << 24) | (a[1] << 16) | (a[2] << 8) | a[3]] = self._take(line)

    def load_tail(self, count):
        """Truth for TAIL_BASE .. TAIL_BASE+count-1, /16 by /16 (in address order)."""
        n = 0
        while n < count:
            base = TAIL_BASE + n
            for line in truth_lines(self.build, ip_str(base) + "/16", self.seed):
                if n >= count:
                    break
                self.tail.append(self._take(line))
                n += 1

    def index(self, addr):
        if addr >= TAIL_BASE:
            return self.tail[addr - TAIL_BASE]
        return self.by_addr[addr]


# ---- per-behaviour facts, exactly as v_addr / v_addr_facts define them

def cipher_class(iana, ossl):
    n = iana if iana is not None else ossl
    if n is None or n == "":
        return None
    n = n.upper()
    if re.search(r"(NULL|ANON|EXPORT|_ADH_|^ADH|AECDH)", n):
        return "NULL/anon/export"
    if "RC4" in n:
        return "RC4"
    if re.search(r"(3DES|DES_CBC3|DES-CBC3)", n):
        return "3DES"
    if re.search(r"(GCM|CHACHA20|POLY1305|CCM)", n):
        return "AEAD"
    if re.search(r"CBC|SHA", n):
        return "CBC"
    return "other"


def addr_facts(t):
    """(flags dict, [(in_denom, hit) per METRICS]) for one behaviour's truth."""
    greeting = t["greeting_code"] is not None
    # every fleet EHLO/HELO reply is 250: EHLO accepted iff the truth has its extensions
    ehlo_ok = greeting and t["ehlo_extensions"] is not None
    offered = ehlo_ok and (t.get("tls_version") is not None or any(
        e.split(" ")[0].upper() == "STARTTLS" for e in t["ehlo_extensions"]))
    tls_ok = offered and t.get("tls_version") is not None
    ver = VERSIONS.get(t.get("tls_version")) if tls_ok else None
    cls = cipher_class(t.get("cipher"), t.get("cipher_openssl")) if tls_ok else None
    dh = (t.get("kex") == "DHE") and t.get("kex_bits") is not None and t["kex_bits"] < 2048
    nm = t.get("name_match")
    trusted, ss = bool(t.get("trusted")), t.get("self_signed")
    sent = t.get("starttls_code") is not None or bool(t.get("starttls_echo"))
    inj_denom = sent and t["outcome"] in ("success", "handshake-error", "handshake-timeout")
    legacy_v = tls_ok and ver < 771
    f = [
        (True, True), (True, greeting), (greeting, ehlo_ok), (ehlo_ok, offered), (offered, tls_ok),
        (ehlo_ok, offered), (ehlo_ok, tls_ok),
        (tls_ok, tls_ok and bool(t.get("forward_secrecy"))),
        (tls_ok, legacy_v), (tls_ok, cls == "RC4"), (tls_ok, cls == "3DES"), (tls_ok, tls_ok and dh),
        (tls_ok, legacy_v or cls in ("RC4", "3DES") or (tls_ok and dh)),
        (tls_ok, tls_ok and trusted),
        (tls_ok and nm is not None, tls_ok and trusted and bool(nm)),
        (tls_ok, tls_ok and bool(ss)), (tls_ok, tls_ok and bool(t.get("expired"))),
        (tls_ok and nm is not None, tls_ok and nm is False),
        (tls_ok, tls_ok and not trusted and not ss and t.get("verify_code") in (2, 19, 20, 21)),
        (ehlo_ok, ehlo_ok and t.get("mangled_starttls") is not None),
        (sent, sent and bool(t.get("starttls_echo"))),
        (inj_denom, inj_denom and (t.get("plaintext_after_starttls") or 0) > 0),
        (False, False),  # dane_match: --no-policy, no TLSA records
    ]
    assert len(f) == len(METRICS)
    flags = {"outcome": t["outcome"], "greeting": greeting, "ehlo_ok": ehlo_ok, "tls_ok": tls_ok,
             "ver": ver, "cipher": t.get("cipher"), "cipher_openssl": t.get("cipher_openssl"),
             "cls": cls, "fs": bool(t.get("forward_secrecy")) if tls_ok else None}
    return flags, f


def rnd_pct(n, d):
    """PostgreSQL round(100 * n / d, 2) (half away from zero) as a string; None if d == 0."""
    if d == 0:
        return None
    q = Fraction(100) * Fraction(n) / Fraction(d)
    c = (q * 100 + Fraction(1, 2)).__floor__()
    return "%d.%02d" % (c // 100, c % 100)


def w_term(rank):
    """1.0 / rank as PostgreSQL's numeric division rounds it (select_div_scale: 20 digits
    below 10^4, 24 up to 10^8), in units of 10^-24."""
    scale = 20 if rank < 10000 else 24 if rank < 10 ** 8 else None
    assert scale is not None
    v = (2 * 10 ** scale + rank) // (2 * rank)   # round half up
    return v * 10 ** (W_SCALE - scale)


def w_str(v):
    return "%d.%0*d" % (v // 10 ** W_SCALE, W_SCALE, v % 10 ** W_SCALE)


def bucket_of(rank):
    """Index of the smallest bucket holding rank (buckets are cumulative)."""
    for i in range(1, len(BUCKETS)):
        if rank <= BUCKETS[i][1]:
            return i
    return 0


def in_bucket(b, bi):
    """Does bucket bi hold a domain whose smallest bucket is b? ('all' holds every one.)"""
    return bi == 0 or 1 <= b <= bi


# ---- the world

def generate(n, seed, out, build, customer_names=0.0):
    rng = random.Random(seed * 1000003 + n)
    crng = random.Random(seed * 7919 + n)   # its own draws: the rest of the world stays put
    n_customer = 0
    tr = Truth(build, seed)
    tr.load_providers()
    by_name = {}
    for a, i in sorted(tr.by_addr.items()):
        by_name.setdefault(tr.beh[i]["behaviour"], []).append(a)
    taken = set()

    def pick(name, k):
        pool = [a for a in by_name[name] if a not in taken][:k]
        assert len(pool) == k, name
        taken.update(pool)
        return pool

    # providers: host -> list of addresses
    hosts = {}
    large = []
    mixed = iter(a for a in sorted(tr.by_addr) if (a & 0xffff) >= 0x8000)
    for k, (share, b1, b2) in enumerate(LARGE, 1):
        h1, h2 = "mx1-p%d.fleet.test" % k, "mx2-p%d.fleet.test" % k
        hosts[h1] = pick(b1, 4) if b1 else [next(mixed) for _ in range(4)]
        hosts[h2] = pick(b2, 2) if b2 else [next(mixed) for _ in range(2)]
        large.append((h1, h2))
    mid = []
    for k in range(1, MID_PROVIDERS + 1):
        h = "mx-h%d.fleet.test" % k
        hosts[h] = [next(mixed) for _ in range(2)]
        mid.append(h)
    mid_cum, acc = [], 0.0
    for k in range(1, MID_PROVIDERS + 1):
        acc += 1.0 / k
        mid_cum.append(acc)

    cat_cum, acc = [], 0.0
    cats = []
    for k, (share, _, _) in enumerate(LARGE):
        acc += share
        cat_cum.append(acc)
        cats.append(("large", k))
    acc += MID_SHARE
    cat_cum.append(acc)
    cats.append(("mid", None))
    for c, share in CATS:
        acc += share
        cat_cum.append(acc)
        cats.append((c, None))

    os.makedirs(out, exist_ok=True)
    fd = open(os.path.join(out, "domains.txt.tmp"), "w")
    fw = open(os.path.join(out, "world.test.zone.tmp"), "w")
    ff = open(os.path.join(out, "fleet.test.zone.tmp"), "w")
    for f, origin in ((fw, "world.test."), (ff, "fleet.test.")):
        f.write("$ORIGIN %s\n$TTL 3600\n@ IN SOA ns1 hostmaster 1 3600 600 86400 300\n"
                "@ IN NS ns1\nns1 IN A 127.0.0.1\n" % origin)
    for h, addrs in hosts.items():
        for a in addrs:
            ff.write("%s IN A %s\n" % (h[:-len(".fleet.test")], ip_str(a)))

    # Domains: written out as drawn; each domain's MX set goes into `plan` as
    # (rank, status, [(host, pref, [addr, ...]), ...]) for the expected values (the
    # tail addresses need the truth, which is read after the draw).
    def customer_host(rank, provider_host, pref=5):
        """A customer's own MX name on its provider's addresses: (name, plan entry)."""
        nonlocal n_customer
        n_customer += 1
        h = "c%d.fleet.test" % rank
        for a in hosts[provider_host]:
            ff.write("c%d IN A %s\n" % (rank, ip_str(a)))
        return h, (h, pref, tuple(hosts[provider_host]))

    next_tail = 0
    plan = []        # compact: (rank, kind, data)
    counts = {}
    for rank in range(1, n + 1):
        u = rng.random()
        i = bisect.bisect_right(cat_cum, u)
        cat, k = cats[i] if i < len(cats) else ("tail", None)
        counts[cat] = counts.get(cat, 0) + 1
        d = "d%d" % rank
        if cat == "implicit":
            fd.write("%d,%s.fleet.test\n" % (rank, d))
            ff.write("%s IN A %s\n" % (d, ip_str(TAIL_BASE + next_tail)))
            plan.append((rank, "implicit-mx", ((d + ".fleet.test", 0, (TAIL_BASE + next_tail,)),)))
            next_tail += 1
            continue
        fd.write("%d,%s.world.test\n" % (rank, d))
        if cat == "large":
            h1, h2 = large[k]
            m1 = (h1, 5, None)
            if customer_names and crng.random() < customer_names:
                h1, m1 = customer_host(rank, h1)
            fw.write("%s IN MX 5 %s.\n%s IN MX 10 %s.\n" % (d, h1, d, h2))
            plan.append((rank, "ok", (m1, (h2, 10, None))))
        elif cat == "mid":
            h = mid[bisect.bisect_left(mid_cum, rng.random() * mid_cum[-1])]
            m = (h, 10, None)
            if customer_names and crng.random() < customer_names:
                h, m = customer_host(rank, h, 10)
            fw.write("%s IN MX 10 %s.\n" % (d, h))
            plan.append((rank, "ok", (m,)))
        elif cat == "null":
            fw.write("%s IN MX 0 .\n" % d)
            plan.append((rank, "null-mx", ()))
        elif cat == "nxdomain":
            plan.append((rank, "nxdomain", ()))
        elif cat == "nodata":
            fw.write('%s IN TXT "v=spf1 -all"\n' % d)
            plan.append((rank, "nodata", ()))
        elif cat == "gone":
            h = "gone-%d.fleet.test" % rank
            fw.write("%s IN MX 10 %s.\n" % (d, h))
            plan.append((rank, "no-mx-address", ((h, 10, ()),)))
        else:
            a = TAIL_BASE + next_tail
            next_tail += 1
            h = mx_name(a)
            ff.write("%s IN A %s\n" % (h[:-len(".fleet.test")], ip_str(a)))
            fw.write("%s IN MX 10 %s.\n" % (d, h))
            mxs = [(h, 10, (a,))]
            v = rng.random()
            if v < TAIL_SECOND_OWN:
                b = TAIL_BASE + next_tail
                next_tail += 1
                h2 = mx_name(b)
                ff.write("%s IN A %s\n" % (h2[:-len(".fleet.test")], ip_str(b)))
                fw.write("%s IN MX 20 %s.\n" % (d, h2))
                mxs.append((h2, 20, (b,)))
            elif v < TAIL_SECOND_OWN + TAIL_BACKUP_MID:
                h2 = mid[bisect.bisect_left(mid_cum, rng.random() * mid_cum[-1])]
                fw.write("%s IN MX 20 %s.\n" % (d, h2))
                mxs.append((h2, 20, None))
            plan.append((rank, "ok", tuple(mxs)))
    for f in (fd, fw, ff):
        f.close()
    # the tail runs on in address order from 127.64.0.0, past 127.127.255.255 above about
    # 8 M domains: the same addresses as before for every smaller world
    assert TAIL_BASE + next_tail <= TAIL_END, "too many tail addresses for 127.64.0.0-127.255.255.255"
    tr.load_tail(next_tail)
    exp = expected_views(plan, hosts, tr)
    meta = {"version": VERSION, "domains": n, "seed": seed, "fleet_seed": seed,
            "zones": ["world.test", "fleet.test"], "categories": counts,
            "tail_addresses": next_tail, "provider_addresses": sum(len(v) for v in hosts.values()),
            "addresses": exp["addresses"], "expected_results": exp["addresses"],
            "public_suffix_added": "fleet.test",
            "customer_names": customer_names, "customer_hosts": n_customer}
    with open(os.path.join(out, "expected.json.tmp"), "w") as f:
        json.dump(exp, f, indent=0, sort_keys=True)
    for name in ("domains.txt", "world.test.zone", "fleet.test.zone", "expected.json"):
        os.replace(os.path.join(out, name + ".tmp"), os.path.join(out, name))
    with open(os.path.join(out, "world.json.tmp"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
    os.replace(os.path.join(out, "world.json.tmp"), os.path.join(out, "world.json"))
    return meta


def expected_views(plan, hosts, tr):
    """Every view's numbers for the world (docs/views.md; sql/migrations/0002_views.sql).

    The bench adds 'fleet.test' to public_suffixes (as a deployment loads the Public
    Suffix List), so a domain's provider is its primary MX host name itself."""
    facts = {i: addr_facts(t) for i, t in tr.beh.items()}
    beh_of = tr.index
    nb = len(BUCKETS)

    # ---- domains: signature = (frozenset of (is_primary, behaviour)), per domain
    used_hosts = {}          # host -> tuple of addresses (hosts that some domain names)
    sig_ids, sigs = {}, []
    cnt = {}                 # (sig, bucket) -> count;  wsum: (sig, bucket) -> weight
    wsum = {}
    status = {}
    mail = [[0, 0, 0] for _ in range(nb)]    # per smallest bucket: domains, with mx, reachable
    prov = {}
    for rank, st, mxs in plan:
        status[st] = status.get(st, 0) + 1
        b = bucket_of(rank)
        mail[b][0] += 1
        if not mxs:
            continue
        mail[b][1] += 1
        minpref = min(p for _, p, _ in mxs)
        primary = min(h for h, p, _ in mxs if p == minpref)
        prov[primary] = prov.get(primary, 0) + 1
        key = []
        for h, p, addrs in mxs:
            if addrs is None:
                addrs = hosts[h]
            if addrs:
                used_hosts[h] = addrs
            for a in addrs:
                key.append((p == minpref, beh_of(a)))
        if not key:
            continue
        key = frozenset(key)
        s = sig_ids.get(key)
        if s is None:
            s = sig_ids[key] = len(sigs)
            sigs.append(key)
        cnt[s, b] = cnt.get((s, b), 0) + 1
        wsum[s, b] = wsum.get((s, b), 0) + w_term(rank)

    addrs = {}
    for h, al in used_hosts.items():
        for a in al:
            addrs[a] = beh_of(a)

    exp = {"addresses": len(addrs), "domains": len(plan)}
    exp["domain_status"] = status

    # ---- v_outcomes
    oc = {}
    for a, i in addrs.items():
        o = facts[i][0]["outcome"]
        oc[o] = oc.get(o, 0) + 1
    tot = len(addrs)
    exp["v_outcomes"] = {o: [str(c), str(tot), rnd_pct(c, tot)] for o, c in sorted(oc.items())}

    # ---- v_rates: address level
    rates = {}
    ad = [[0, 0] for _ in METRICS]
    for a, i in addrs.items():
        for m, (d, h) in enumerate(facts[i][1]):
            if d:
                ad[m][0] += 1
                if h:
                    ad[m][1] += 1
    for m, name in enumerate(METRICS):
        rates["%s|address|-|all" % name] = [str(ad[m][0]), str(ad[m][1]), rnd_pct(ad[m][1], ad[m][0])]

    # mx level: per used host; any / all over the host's addresses in the denominator
    mx = {r: [[0, 0] for _ in METRICS] for r in ("any", "all")}
    best_mx = {}
    for h, al in used_hosts.items():
        fl = [facts[beh_of(a)] for a in al]
        for m in range(len(METRICS)):
            den = [f[1][m][1] for f in fl if f[1][m][0]]
            if den:
                for r in ("any", "all"):
                    mx[r][m][0] += 1
                if any(den):
                    mx["any"][m][1] += 1
                if all(den):
                    mx["all"][m][1] += 1
        vs = [f[0]["ver"] for f in fl if f[0]["tls_ok"]]
        if vs:
            best_mx[max(vs)] = best_mx.get(max(vs), 0) + 1
    for r in ("any", "all"):
        for m, name in enumerate(METRICS):
            d, h = mx[r][m]
            rates["%s|mx|%s|all" % (name, r)] = [str(d), str(h), rnd_pct(h, d)]

    # domain level, per signature then per bucket (cumulative)
    sig_rules = []
    best_dom = {}
    reach = {}
    for s, key in enumerate(sigs):
        per = []
        for m in range(len(METRICS)):
            fa = [(prim, facts[i][1][m]) for prim, i in key]
            den_any = any(d for _, (d, h) in fa)
            hit_any = any(d and h for _, (d, h) in fa)
            hit_all = den_any and all(h for _, (d, h) in fa if d)
            den_p = any(d for p, (d, h) in fa if p)
            hit_p = any(d and h for p, (d, h) in fa if p)
            per.append(((den_any, hit_any), (den_any, hit_all), (den_p, hit_p)))
        sig_rules.append(per)
        vs = [facts[i][0]["ver"] for _, i in key if facts[i][0]["tls_ok"]]
        reach[s] = any(facts[i][0]["ehlo_ok"] for _, i in key)
        best_dom[s] = max(vs) if vs else None
    rules = ("any_mx", "all_mx", "primary_mx")
    for bi, (bname, _) in enumerate(BUCKETS):
        inb = [(s, b) for (s, b) in cnt if in_bucket(b, bi)]
        if not inb:
            continue
        for m, name in enumerate(METRICS):
            for ri, r in enumerate(rules):
                cd = ch = wd = wh = 0
                for s, b in inb:
                    d, h = sig_rules[s][m][ri]
                    if d:
                        cd += cnt[s, b]
                        wd += wsum[s, b]
                        if h:
                            ch += cnt[s, b]
                            wh += wsum[s, b]
                rates["%s|domain|%s|%s" % (name, r, bname)] = [str(cd), str(ch), rnd_pct(ch, cd)]
                rates["%s|domain_w|%s|%s" % (name, r, bname)] = [w_str(wd), w_str(wh), rnd_pct(wh, wd)]
    exp["v_rates"] = rates

    # ---- v_tls_versions
    names = {769: "TLSv1", 770: "TLSv1.1", 771: "TLSv1.2", 772: "TLSv1.3"}
    tv = {}
    lv = {}
    for a, i in addrs.items():
        if facts[i][0]["tls_ok"]:
            v = facts[i][0]["ver"]
            lv[v] = lv.get(v, 0) + 1
    tv["address"] = lv
    tv["mx"] = best_mx
    bd = {}
    for (s, b), c in cnt.items():
        if best_dom[s] is not None:
            bd[best_dom[s]] = bd.get(best_dom[s], 0) + c
    tv["domain"] = bd
    out = {}
    for level, m in tv.items():
        t = sum(m.values())
        for v, c in m.items():
            out["%s|%s" % (level, names.get(v, "unknown"))] = [str(c), str(t), rnd_pct(c, t)]
    exp["v_tls_versions"] = out

    # ---- v_cipher_classes, v_ciphers (address level, TLS sessions)
    cc, ci = {}, {}
    for a, i in addrs.items():
        f = facts[i][0]
        if f["tls_ok"]:
            k = f["cls"] or "unknown"
            cc[k] = cc.get(k, 0) + 1
            k = "%s|%s|%s|%s" % (f["cipher"] or f["cipher_openssl"] or "unknown", f["cipher_openssl"],
                                 f["cls"], "t" if f["fs"] else "f")
            ci[k] = ci.get(k, 0) + 1
    t = sum(cc.values())
    exp["v_cipher_classes"] = {k: [str(c), str(t), rnd_pct(c, t)] for k, c in cc.items()}
    exp["v_ciphers"] = {k: [str(c), str(t), rnd_pct(c, t)] for k, c in ci.items()}

    # ---- v_mail_domains (cumulative buckets)
    md = {}
    reach_b = [0] * nb
    for (s, b), c in cnt.items():
        if reach[s]:
            reach_b[b] += c
    for bi, (bname, _) in enumerate(BUCKETS):
        bs = [b for b in range(nb) if in_bucket(b, bi)]
        nd = sum(mail[b][0] for b in bs)
        if nd == 0:
            continue
        nm = sum(mail[b][1] for b in bs)
        nr = sum(reach_b[b] for b in bs)
        md[bname] = [str(nd), str(nm), str(nr), rnd_pct(nr, nd)]
    exp["v_mail_domains"] = md

    # ---- v_provider_concentration: providers serving > 1 domain row by row; the
    # single-domain tail as (rows, sum of cumulative_pct, min provider_rank)
    tot = sum(prov.values())
    order = sorted(prov.items(), key=lambda kv: (-kv[1], kv[0]))
    pc, tail_rows, tail_cum, tail_rank = {}, 0, Fraction(0), None
    run, rank_no, prev = 0, 0, None
    for pos, (p, c) in enumerate(order, 1):
        if c != prev:
            rank_no, prev = pos, c
        run += c
        cum = rnd_pct(run, tot)
        if c > 1:
            pc[p] = [str(c), str(tot), rnd_pct(c, tot), str(rank_no), cum]
        else:
            tail_rows += 1
            tail_cum += Fraction(cum)
            tail_rank = rank_no if tail_rank is None else tail_rank
    exp["v_provider_concentration"] = {"rows": pc, "tail": [str(tail_rows), "%.2f" % tail_cum
                                                            if tail_rows else None,
                                                            str(tail_rank) if tail_rank else None]}
    exp["behaviours"] = {facts_name(tr, i): c for i, c in sorted(_count(addrs.values()).items())}
    return exp


def facts_name(tr, i):
    return tr.beh[i]["behaviour"]


def _count(it):
    c = {}
    for x in it:
        c[x] = c.get(x, 0) + 1
    return c


def world_dir(cache, n, seed, customer_names=0.0):
    cn = "-c%g" % customer_names if customer_names else ""
    return os.path.join(cache, "world-%d-%d%s-v%d" % (n, seed, cn, VERSION))


def ensure_world(n, seed, build, cache=os.path.join(ROOT, "bench", "cache"), customer_names=0.0):
    """The world for (n, seed, customer_names), generated once into cache/. Returns (dir, meta)."""
    d = world_dir(cache, n, seed, customer_names)
    meta = os.path.join(d, "world.json")
    if not os.path.exists(meta):
        generate(n, seed, d, build, customer_names)
    with open(meta) as f:
        return d, json.load(f)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--domains", type=int, default=1000000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--customer-names", type=float, default=0.0,
                    help="fraction of provider domains with an MX name of their own")
    a = ap.parse_args()
    if a.seed == 0:
        sys.exit("world.py: seed 0 is the fleet's test layout (last octet mod 30), not the mix")
    meta = generate(a.domains, a.seed, a.out, a.build, a.customer_names)
    print(json.dumps(meta, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
