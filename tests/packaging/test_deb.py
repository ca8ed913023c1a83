#!/usr/bin/env python3
"""
The Debian package end to end, on this machine (a CI step of .ci/run, not a ctest test:
it installs into the system, so it needs root and a machine without mxsurvey installed).

    python3 tests/packaging/test_deb.py BUILD_DIR

Builds the package with CPack from BUILD_DIR, installs it with apt-get, and checks: the
Depends line, `mxsurvey --version`, `man -w` for every page, the system user and its home,
that nothing is enabled, `systemd-analyze verify` on the units, the completion, then a
scan of the loopback fleet run as the mxsurvey user into its embedded database, and the
command of the retention unit. Then it purges the package and checks that nothing is left
but /var/lib/mxsurvey with the cluster (docs/operations.md), installs it once more (its
old user id taken by another user) to see the kept data adopted and found again, purges
again, and removes the data directory it made.
Prints SKIP and exits 0 when not root.
"""
import glob
import os
import pwd
import grp
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

HOME = "/var/lib/mxsurvey"
DATA = HOME + "/.local/share/mxsurvey"
UNITS = ["mxsurvey-nightly.service", "mxsurvey-nightly.timer",
         "mxsurvey-retention.service", "mxsurvey-retention.timer"]
DEPENDS = ["adduser", "postgresql", "publicsuffix", "libssl3", "libevent-core-2.1-7",
           "libevent-extra-2.1-7", "libevent-openssl-2.1-7", "libc-ares2", "libpq5", "libjansson4", "libc6"]
APT = ["apt-get", "-o", "DPkg::Lock::Timeout=600", "-y", "-q"]
SQUATTER = "mxs-pkgtest-uid"
CLEAN_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}

failures = []


T0 = time.monotonic()


def step(msg):
    print(f"== {time.monotonic() - T0:5.1f} s  {msg}", flush=True)


def check(ok, what):
    print(f"   {'ok  ' if ok else 'FAIL'} {what}", flush=True)
    if not ok:
        failures.append(what)


def run(args, check_rc=True, **kw):
    p = subprocess.run(args, capture_output=True, text=True, **kw)
    if check_rc and p.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p


def as_mxsurvey(args, **kw):
    """A command as the mxsurvey user, with a clean environment and its home as HOME."""
    env = dict(CLEAN_ENV, HOME=HOME)
    return run(["runuser", "-u", "mxsurvey", "--", "env", "-i",
                *[f"{k}={v}" for k, v in env.items()], *args], cwd="/", **kw)


def installed():
    p = run(["dpkg-query", "-W", "-f=${db:Status-Status}", "mxsurvey"], check_rc=False)
    return p.returncode == 0 and p.stdout.strip() not in ("", "not-installed")


def user_exists():
    try:
        pwd.getpwnam("mxsurvey")
        return True
    except KeyError:
        return False


def group_exists():
    try:
        grp.getgrnam("mxsurvey")
        return True
    except KeyError:
        return False


def scan_fleet(build, tmp):
    """A scan of 64 fleet addresses as the mxsurvey user into its embedded database."""
    from fleet import Fleet
    from scanrun import targets_for
    with Fleet(build, seed=7, delay_ms=1000) as fl:
        ips = [t["ip"] for t in fl.truth("127.9.0.0/26")]
        targets = os.path.join(tmp, "targets.txt")
        with open(targets, "w") as f:
            f.write(targets_for(ips))
        ca = os.path.join(tmp, "ca.pem")
        shutil.copy(fl.ca_file, ca)
        for f in (targets, ca):
            os.chmod(f, 0o644)
        p = as_mxsurvey(["mxsurvey", "scan", "--db", "auto", "--label", "package-test",
                         "--port", str(fl.port), "--no-default-blocklist", "--ca-file", ca,
                         "--ehlo-name", "scanner.mxsurvey.test", "--quiet",
                         "--per-net", "1000", "--greeting-timeout", "5s", "--timeout", "5s",
                         "--deadline", "10s", "--retry-delay", "1s", targets],
                        check_rc=False, timeout=300)
    m = re.search(r"(\d+) targets read, (\d+) result rows stored", p.stderr)
    check(p.returncode == 0 and m is not None and m[1] == m[2] == str(len(ips)),
          f"fleet scan as mxsurvey into its embedded database: exit {p.returncode}, "
          f"{m[0] if m else p.stderr[-1500:]}")


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    build = os.path.abspath(sys.argv[1])
    if os.geteuid() != 0:
        print("SKIP: the package test installs into the system and needs root")
        return 0
    if installed() or user_exists() or os.path.exists(HOME):
        print("FAIL: mxsurvey is installed here already (package, user or /var/lib/mxsurvey):"
              " this test needs a machine without it")
        return 1
    t0 = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="mxs-deb-")
    os.chmod(tmp, 0o755)
    try:
        step("build the package (cpack -G DEB)")
        run(["cpack", "-G", "DEB", "-B", tmp], cwd=build)
        deb = glob.glob(os.path.join(tmp, "mxsurvey_*.deb"))[0]
        fields = run(["dpkg-deb", "-f", deb, "Version", "Depends"]).stdout
        version = re.search(r"^Version: (\S+)", fields, re.M)[1]
        depends = {d.split()[0] for d in re.search(r"^Depends: (.*)", fields, re.M)[1].split(", ")}
        # the list as dpkg-shlibdeps finds it: at least these (a new library linked in
        # adds its package by itself)
        check(set(DEPENDS) <= depends, f"Depends: {sorted(depends)} has {DEPENDS}")
        files = [l.split()[-1][1:] for l in run(["dpkg-deb", "-c", deb]).stdout.splitlines()
                 if not l.startswith("d")]

        step("install it (apt-get install ./mxsurvey_*.deb)")
        run([*APT, "install", "--no-install-recommends", deb], env=dict(os.environ,
            DEBIAN_FRONTEND="noninteractive"))
        try:
            check_installed(version, files)
            step("scan the loopback fleet as the mxsurvey user")
            scan_fleet(build, tmp)
            st = as_mxsurvey(["mxsurvey", "db", "scans"], check_rc=False)
            check(st.returncode == 0 and "package-test" in st.stdout + st.stderr,
                  "mxsurvey db scans (as mxsurvey) lists the scan")
            check(os.path.isdir(DATA + "/pg/data")
                  and pwd.getpwuid(os.stat(DATA + "/pg/data").st_uid).pw_name == "mxsurvey",
                  f"the cluster is in {DATA}/pg, owned by mxsurvey")
            rep = as_mxsurvey(["mxsurvey", "report", "--format", "json"], check_rc=False)
            check(rep.returncode == 0 and rep.stdout.startswith("{"), "mxsurvey report")
            ret = as_mxsurvey(["sh", "-c", "set -a; . /etc/mxsurvey/nightly.env; exec mxsurvey db "
                               "retention ${MXS_RETENTION_DAYS:-400}"], check_rc=False)
            check(ret.returncode == 0, f"the retention unit's command: {ret.stderr.strip()[-300:]}")
            night = as_mxsurvey(["sh", "-c", "set -a; . /etc/mxsurvey/nightly.env; exec "
                                 "mxsurvey-nightly"], check_rc=False)
            check(night.returncode != 0 and "MXS_DOMAINS" in night.stderr,
                  "mxsurvey-nightly refuses to run with the settings as installed")
        finally:
            uid = pwd.getpwnam("mxsurvey").pw_uid if user_exists() else None
            step("purge it (apt-get purge mxsurvey)")
            run([*APT, "purge", "mxsurvey"], env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        check_purged(files, uid, kept_cluster=True)

        step("install again, the old user id taken by another user: the kept data is adopted")
        # without the squatter adduser would hand out the same id again, and there would be
        # nothing to adopt
        run(["useradd", "--system", "--no-create-home", "--uid", str(uid), SQUATTER])
        # dpkg this time: the dependencies are in place, and apt's start-up is slow
        run(["dpkg", "-i", deb], env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        new_uid = pwd.getpwnam("mxsurvey").pw_uid
        st = as_mxsurvey(["mxsurvey", "db", "scans"], check_rc=False)
        check(new_uid != uid and st.returncode == 0 and "package-test" in st.stdout + st.stderr,
              f"user id {uid} -> {new_uid}: the kept cluster and its scan are there")
        uid = new_uid
        run(["dpkg", "--purge", "mxsurvey"], env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        check_purged(files, uid, kept_cluster=True)
    finally:
        if installed():
            run([*APT, "purge", "mxsurvey"], check_rc=False)
        run(["userdel", SQUATTER], check_rc=False)
        shutil.rmtree(HOME, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"== {len(failures)} failures; {time.monotonic() - t0:.0f} s", flush=True)
    return 1 if failures else 0


def check_installed(version, files):
    step("check the installation")
    v = run(["mxsurvey", "--version"], check_rc=False)
    check(v.stdout.strip() == f"mxsurvey {version}", f"mxsurvey --version: {v.stdout.strip()}")
    pages = [f"{m[2]} {m[1]}" for f in files
             if (m := re.fullmatch(r"/usr/share/man/man\d/(.+)\.(\d)\.gz", f))]
    check(len(pages) >= 8 and "1 mxsurvey" in pages and "8 mxsurvey-nightly" in pages,
          f"the pages: {pages}")
    for page in pages:
        w = run(["man", "-w", *page.split()], check_rc=False)
        check(w.returncode == 0 and w.stdout.startswith("/usr/share/man/"),
              f"man -w {page}: {w.stdout.strip() or w.stderr.strip()}")
    r = run(["man", "mxsurvey-scan"], check_rc=False,
            env=dict(os.environ, MANPAGER="cat", LANG="C", LC_ALL="C"))
    check(r.returncode == 0 and "--ehlo-name" in r.stdout.replace("\u2010", "-"),
          "man mxsurvey-scan shows the options")
    pw = pwd.getpwnam("mxsurvey") if user_exists() else None
    check(pw is not None and pw.pw_uid < 1000 and pw.pw_dir == HOME
          and pw.pw_shell == "/usr/sbin/nologin",
          f"system user mxsurvey: {pw and (pw.pw_uid, pw.pw_dir, pw.pw_shell)}")
    check(group_exists(), "group mxsurvey")
    st = os.stat(HOME)
    check(pw is not None and st.st_uid == pw.pw_uid, f"{HOME} belongs to mxsurvey")
    wants = glob.glob("/etc/systemd/system/*/mxsurvey*") + glob.glob("/etc/systemd/system/mxsurvey*")
    check(wants == [], f"nothing enabled: {wants}")
    units = [f"/usr/lib/systemd/system/{u}" for u in UNITS]
    v = run(["systemd-analyze", "verify", *units], check_rc=False)
    check(v.returncode == 0 and v.stdout + v.stderr == "",
          f"systemd-analyze verify: {(v.stdout + v.stderr).strip() or 'clean'}")
    conf = run(["dpkg-query", "-W", "-f=${Conffiles}", "mxsurvey"]).stdout
    check("/etc/mxsurvey/nightly.env" in conf, "nightly.env is a conffile")
    c = run(["bash", "-c", "source /usr/share/bash-completion/completions/mxsurvey; "
             "COMP_WORDS=(mxsurvey scan --ehlo); COMP_CWORD=2; _mxsurvey; echo ${COMPREPLY[@]}"],
            check_rc=False)
    check(c.stdout.strip() == "--ehlo-name", f"bash completion: {c.stdout.strip()}")
    missing = [f for f in files if not os.path.exists(f)]
    check(missing == [], f"every file of the package is in place: missing {missing}")


def check_purged(files, uid, kept_cluster):
    step("check the purge")
    check(not installed(), "the package is gone (not even config-files)")
    check(not user_exists() and not group_exists(), "user and group mxsurvey are gone")
    left = [f for f in files if os.path.lexists(f)]
    check(left == [], f"no file of the package is left: {left}")
    check(not os.path.exists("/etc/mxsurvey"), "/etc/mxsurvey is gone")
    wants = glob.glob("/etc/systemd/system/*/mxsurvey*")
    check(wants == [], f"no unit links left: {wants}")
    if uid is not None:
        procs = run(["pgrep", "-u", str(uid)], check_rc=False).stdout.split()
        check(procs == [], f"no process of the mxsurvey user left (the cluster is stopped): {procs}")
    if kept_cluster:
        check(os.path.isfile(DATA + "/pg/data/PG_VERSION"),
              f"{HOME} is kept, with the cluster")


if __name__ == "__main__":
    sys.exit(main())
