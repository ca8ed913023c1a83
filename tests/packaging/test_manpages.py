"""
The man pages and the bash completion say what the binary does: for every command, the
options of its --help equal the options of its built man page (read from what groff
renders, not from the page source) and those the completion offers, and equal the
options its getopt_long table accepts (read from cli/). Every page renders without a
groff warning and has the usual sections. `cmake --install` puts everything in place with
the unit paths of its prefix.

The option lists are read here independently of man/helpdoc.py, which writes the pages.
"""
import os
import re
import subprocess
import tempfile
import unittest

BIN = os.environ["MXS_BIN"]
BUILD = os.environ["MXS_BUILD"]
SRC = os.environ["MXS_SRC"]
MAN = os.path.join(BUILD, "man")
# the getopt_long tables of each command (cli/), and --help, which needs no mention
SOURCES = {"scan": ["cmd_scan.c", "scan_opts.c"], "survey": ["cmd_survey.c", "scan_opts.c"]}
IMPLICIT = {"--help", "-h"}
SECTIONS = ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "ENVIRONMENT",
            "FILES", "EXAMPLES", "SEE ALSO"]
OPT = r"--?[A-Za-z0-9][A-Za-z0-9-]*"


def read(*path):
    with open(os.path.join(*path), encoding="utf-8") as f:
        return f.read()


def run(args, **kw):
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
    return subprocess.run(args, check=True, capture_output=True, text=True, env=env, **kw).stdout


def help_text(command):
    return run([BIN, command, "--help"] if command else [BIN, "--help"])


def commands():
    """The commands 'mxsurvey --help' lists."""
    return [l.split()[0] for l in help_text("").splitlines()
            if re.match(r"^  [a-z]", l) and re.search(r"\S\s{2,}\S", l)]


def help_options(text):
    """Options a help text defines: at the start of an indented line, or after a gap of
    two blanks on it ('--a DUR (10s)  --b DUR (60s)'), and the name after ', '
    ('-o, --output FILE')."""
    names = set()
    for line in text.splitlines():
        if not line[:1].isspace():
            continue
        for m in re.finditer(rf"(?:^\s+|\s{{2,}})({OPT})(?:[ =]\S+)?(?:, ({OPT}))?", line):
            names.update(n for n in m.groups() if n)
    return names


def render(page):
    """The page as groff prints it (ASCII, wide lines, no overstriking), and its warnings."""
    p = subprocess.run(["groff", "-man", "-ww", "-Tascii", "-P-cbou", "-rLL=200n", page],
                       capture_output=True, text=True, check=True)
    return p.stdout, p.stderr


def sections(rendered):
    """{section heading: [lines]} of a rendered page."""
    out, cur = {}, None
    for line in rendered.splitlines():
        if re.fullmatch(r"[A-Z][A-Z ]+", line):
            cur = line
            out[cur] = []
        elif cur:
            out[cur].append(line)
    return out


def tags(lines):
    """The tag of every tagged paragraph (.TP): at the section's indent of 7, followed by
    its text indented 14, or followed on its line by the text at column 14 when shorter
    than 7 ('scan   probe ...')."""
    out = []
    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if re.match(r"^ {7}\S", line) and re.match(r"^ {14}\S", nxt):
            out.append(line.strip())
        elif re.match(r"^ {7}\S.{5} \S", line):
            out.append(line[7:14].strip())
    return out


def man_options(command):
    text, _ = render(os.path.join(MAN, f"mxsurvey-{command}.1"))
    return {n for t in tags(sections(text)["OPTIONS"]) for n in re.findall(rf"(?<![\w-]){OPT}", t)}


def getopt_options(command):
    names = set()
    for f in SOURCES.get(command, [f"cmd_{command}.c"]):
        src = read(SRC, "cli", f)
        names |= {"--" + n for n in re.findall(r'\{\s*"([a-z0-9-]+)"\s*,\s*\w+_argument', src)}
        for short in re.findall(r'getopt_long\([^,]+,[^,]+,\s*"([^"]*)"', src):
            names |= {"-" + c for c in short if c.isalnum()}
    return names


def completion(*words):
    script = os.path.join(MAN, "mxsurvey.bash")
    cmd = (f'source {script}; COMP_WORDS=(mxsurvey {" ".join(words)}); '
           f'COMP_CWORD={len(words)}; _mxsurvey; printf "%s\\n" "${{COMPREPLY[@]}}"')
    return set(run(["bash", "-c", cmd]).split())


class ManPages(unittest.TestCase):
    def test_options_of_help_and_man_page_agree(self):
        for c in commands():
            with self.subTest(command=c):
                h = help_options(help_text(c))
                self.assertTrue(h, f"no options read from 'mxsurvey {c} --help'")
                self.assertEqual(man_options(c), h, f"mxsurvey-{c}(1) OPTIONS vs --help")

    def test_help_lists_every_option_getopt_accepts(self):
        for c in commands():
            with self.subTest(command=c):
                self.assertEqual(help_options(help_text(c)) - IMPLICIT,
                                 getopt_options(c) - IMPLICIT,
                                 f"'mxsurvey {c} --help' vs its getopt_long table")

    def test_commands_and_subcommands_agree(self):
        def items(text):
            return [l.split()[0] for l in text.splitlines()
                    if re.match(r"^  [a-z]", l) and re.search(r"\S\s{2,}\S", l)]
        for page, command in (("mxsurvey.1", ""), ("mxsurvey-db.1", "db")):
            with self.subTest(page=page):
                text, _ = render(os.path.join(MAN, page))
                sec = sections(text)["COMMANDS" if not command else "SUBCOMMANDS"]
                self.assertEqual([t.split()[0] for t in tags(sec)], items(help_text(command)))

    def test_every_command_has_its_page(self):
        for c in commands():
            self.assertTrue(os.path.exists(os.path.join(SRC, "man", f"mxsurvey-{c}.1.in")),
                            f"man/mxsurvey-{c}.1.in: the page of 'mxsurvey {c}'")

    def test_pages_render_without_warnings_and_have_the_sections(self):
        pages = [f for f in os.listdir(MAN) if re.search(r"\.[18]$", f)]
        self.assertEqual(len(pages), len(commands()) + 2, pages)
        for page in pages:
            with self.subTest(page=page):
                text, warnings = render(os.path.join(MAN, page))
                self.assertEqual(warnings, "")
                self.assertNotIn("@", re.sub(r"\S+@\S+", "", text), "placeholder left")
                have = list(sections(text))
                self.assertEqual([s for s in have if s in SECTIONS], SECTIONS)
                # man-db reads them too (man -l: the pager's formatting path)
                out = subprocess.run(["man", "-l", os.path.join(MAN, page)], capture_output=True,
                                     text=True, env=dict(os.environ, MANPAGER="cat",
                                                         MANWIDTH="80"))
                self.assertEqual(out.returncode, 0, out.stderr)
                self.assertIn("NAME", out.stdout)

    def test_nightly_page_names_every_variable_of_the_script(self):
        script = read(SRC, "contrib", "mxsurvey-nightly")
        script += read(SRC, "contrib", "systemd", "nightly.env")
        text, _ = render(os.path.join(MAN, "mxsurvey-nightly.8"))
        env = "\n".join(sections(text)["ENVIRONMENT"])
        for var in sorted(set(re.findall(r"\bMXS_[A-Z_]+", script))):
            self.assertIn(var, env)


class Completion(unittest.TestCase):
    def test_commands(self):
        top = {l.split()[0] for l in help_text("").splitlines() if re.match(r"^  [a-z]", l)}
        self.assertEqual(completion(""), top | {"--help", "--version"})

    def test_options_of_every_command(self):
        for c in commands():
            with self.subTest(command=c):
                self.assertEqual({w for w in completion(c, "-") if w.startswith("-")},
                                 help_options(help_text(c)))
                if "--log-level" in help_options(help_text(c)):
                    self.assertEqual(completion(c, "--log-l"), {"--log-level"})

    def test_arguments(self):
        self.assertEqual(completion("scan", "--log-level", ""), {"error", "warn", "info", "debug"})
        self.assertEqual(completion("scan", "--rate", ""), set())
        self.assertIn("status", completion("db", "--data-dir", "/tmp", "st"))
        self.assertIn("stop", completion("db", "st"))


class Install(unittest.TestCase):
    def install(self, prefix):
        dest = tempfile.mkdtemp(prefix="mxs-install-")
        self.addCleanup(subprocess.run, ["rm", "-rf", dest])
        subprocess.run(["cmake", "--install", BUILD, "--prefix", prefix], check=True,
                       capture_output=True, env=dict(os.environ, DESTDIR=dest))
        return dest

    def test_cmake_install_puts_everything_in_place(self):
        for prefix, conf in (("/usr", "/etc/mxsurvey"), ("/usr/local", "/etc/mxsurvey"),
                             ("/opt/mxs", "/opt/mxs/etc/mxsurvey")):
            with self.subTest(prefix=prefix):
                root = self.install(prefix)
                p = root + prefix
                for f in ["bin/mxsurvey", "bin/mxsurvey-nightly"]:
                    self.assertTrue(os.access(os.path.join(p, f), os.X_OK), f)
                for page in ["man1/mxsurvey.1.gz", "man1/mxsurvey-scan.1.gz",
                             "man1/mxsurvey-db.1.gz", "man8/mxsurvey-nightly.8.gz"]:
                    self.assertTrue(os.path.exists(os.path.join(p, "share/man", page)), page)
                self.assertTrue(os.path.exists(
                    os.path.join(p, "share/bash-completion/completions/mxsurvey")))
                self.assertTrue(os.path.exists(os.path.join(p, "share/doc/mxsurvey/operations.md")))
                self.assertTrue(os.path.exists(root + conf + "/nightly.env"))
                units = os.path.join(p, "lib/systemd/system")
                self.assertEqual(sorted(os.listdir(units)),
                                 ["mxsurvey-nightly.service", "mxsurvey-nightly.timer",
                                  "mxsurvey-retention.service", "mxsurvey-retention.timer"])
                nightly = read(units, "mxsurvey-nightly.service")
                self.assertIn(f"ExecStart={prefix}/bin/mxsurvey-nightly\n", nightly)
                self.assertIn(f"EnvironmentFile={conf}/nightly.env\n", nightly)
                retention = read(units, "mxsurvey-retention.service")
                self.assertIn(f"exec {prefix}/bin/mxsurvey db ", retention)
                self.assertNotIn("@", re.sub(r"\S+@\S+\.\S+", "", nightly + retention))

    def test_install_keeps_edited_settings(self):
        root = self.install("/usr")
        env = root + "/etc/mxsurvey/nightly.env"
        with open(env, "w") as f:
            f.write("MXS_DOMAINS=/srv/mine.csv\n")
        subprocess.run(["cmake", "--install", BUILD, "--prefix", "/usr"], check=True,
                       capture_output=True, env=dict(os.environ, DESTDIR=root))
        self.assertEqual(read(env), "MXS_DOMAINS=/srv/mine.csv\n")


if __name__ == "__main__":
    unittest.main(verbosity=2)
