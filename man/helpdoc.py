#!/usr/bin/env python3
"""Man pages and bash completion from the binary's own --help (one source of truth).

    helpdoc.py man --bin BIN --version V PAGE.in -o PAGE
    helpdoc.py completion --bin BIN -o mxsurvey.bash
    helpdoc.py options --bin BIN COMMAND      # the option names --help defines, one a line

A page source (man/*.in) is roff written by hand with placeholders that are filled from
the help texts, so the parts that can disagree with the binary are never written twice:

    @VERSION@ @DATE@      the project version; the date of SOURCE_DATE_EPOCH, else of the
                          newest of the page source and this script (reproducible builds)
    @SUMMARY@             the command's one-line summary from 'mxsurvey --help'
    @SYNOPSIS@            the usage line of 'mxsurvey COMMAND --help'
    @DESCRIPTION@         the help's paragraph between the usage line and the first option
    @OPTIONS@             every option of the help, under the help's own group headings
    @COMMANDS@            the help's command / subcommand lines (mxsurvey, mxsurvey db)
    @EXIT_STATUS@         the help's 'Exit status: 0 done, 2 usage, ...' sentence

A page is for the command named by its file name: mxsurvey-scan.1.in is 'mxsurvey scan',
mxsurvey.1.in is 'mxsurvey' itself. A placeholder the help cannot fill is an error.

How a help text is read (cli/cmd_*.c usage()): 'usage:' starts the synopsis; a line at
column 0 ending in ':' is a group heading; an indented line starting with '-' holds one or
more options ('-o, --output FILE  text', '--a DUR (10s)  --b DUR (60s)'), and deeper
indented lines continue its text; an indented line starting with a word is a (sub)command
('done N    text'); other lines at column 0 are paragraph text.
"""

import argparse
import os
import re
import subprocess
import sys
import time

OPT = r"--?[A-Za-z0-9][A-Za-z0-9-]*"
# an option's argument: FILE, DUR, IP[:PORT], I/N, [=ARG], <dir>
ARG = r"(?:[A-Z][A-Z0-9_]*(?:\[[^\]\s]*\])?(?:/[A-Z]+)?|\[=[A-Z]+\]|<[^>\s]+>)"
SPEC = re.compile(rf"^(?P<spec>{OPT}(?:[ =]{ARG})?(?:, ?{OPT}(?:[ =]{ARG})?)*)(?:\s+(?P<text>.*))?$")
ENTRY_SPLIT = re.compile(rf"\s{{2,}}(?={OPT})")
ITEM = re.compile(r"^(?P<name>\S+(?: [^\s-][^\s]*)*?)\s{2,}(?P<text>\S.*)$")


def run_help(binary, command):
    args = [binary] + ([command] if command else []) + ["--help"]
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
    out = subprocess.run(args, check=True, capture_output=True, text=True, env=env)
    return out.stdout


class Entry:
    def __init__(self, kind, spec, text):
        self.kind = kind      # "option" or "item"
        self.spec = spec      # "-o, --output FILE" or "done N"
        self.text = text

    def names(self):
        return re.findall(rf"(?<![\w-]){OPT}", self.spec) if self.kind == "option" else []


class Help:
    """A help text read into usage, paragraph, groups of entries and exit codes."""

    def __init__(self, text):
        self.usage = []
        self.paragraph = []    # text before the first option
        self.tail = []         # text after them
        self.groups = []       # [heading or None, [Entry]]
        self.exit = []         # [(code, meaning)]
        exit_text = None
        last = None
        for raw in text.splitlines():
            line = raw.rstrip()
            indent = len(line) - len(line.lstrip())
            body = line.strip()
            if not body:
                last = None
                continue
            if body.lower().startswith("usage:"):
                self.usage.append(body[len("usage:"):].strip())
                last = None
                continue
            if body.lower().startswith("exit status:"):
                exit_text = body[len("exit status:"):].strip()
                last = "exit"
                continue
            if last == "exit" and indent == 0:
                exit_text += " " + body
                continue
            if indent == 0 and body.endswith(":"):
                self.groups.append([body[:-1], []])
                last = None
                continue
            if indent == 0:
                (self.tail if self.groups else self.paragraph).append(body)
                last = None
                continue
            if body.startswith("-"):
                for piece in ENTRY_SPLIT.split(body):
                    m = SPEC.match(piece)
                    if m:
                        last = Entry("option", m["spec"], m["text"] or "")
                    else:   # an unusual form: the words up to a gap of two blanks
                        spec, _, text = piece.partition("  ")
                        last = Entry("option", spec.strip(), text.strip())
                    self._add(last)
                continue
            if last is not None and last != "exit" and indent >= 6:
                last.text = (last.text + " " + body).strip()
                continue
            m = ITEM.match(body)
            if m:
                last = Entry("item", m["name"], m["text"])
                self._add(last)
            elif isinstance(last, Entry):   # prose under an entry
                last.text = (last.text + " " + body).strip()
            else:
                (self.tail if self.groups else self.paragraph).append(body)
        self.exit_text = exit_text
        if exit_text:
            for part in re.split(r",\s*(?=\d+\s)", exit_text.rstrip(".")):
                m = re.match(r"(\d+)\s+(.*)", part.strip())
                if not m:   # not a list of codes: the page shows the sentence as it is
                    self.exit = []
                    break
                self.exit.append((int(m[1]), m[2]))

    def _add(self, entry):
        if not self.groups:
            self.groups.append([None, []])
        self.groups[-1][1].append(entry)

    def entries(self, kind):
        return [e for _, es in self.groups for e in es if e.kind == kind]

    def option_names(self):
        return sorted({n for e in self.entries("option") for n in e.names()})


# --- roff -------------------------------------------------------------------------------

def esc(text):
    """Plain text as roff: backslashes, hyphens (options are typed: ASCII minus), and a
    leading '.' or "'" that would be read as a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    if text[:1] in (".", "'"):
        text = "\\&" + text
    return text


def spec_roff(spec):
    """'-o, --output FILE' as bold names and italic arguments."""
    out = []
    for tok in re.split(r"(\s+|,\s*|=|\[|\]|/)", spec):
        if not tok:
            continue
        if re.fullmatch(OPT, tok) or re.fullmatch(r"[a-z][a-z0-9-]*", tok):
            out.append(f"\\fB{esc(tok)}\\fR")
        elif re.fullmatch(r"[A-Z][A-Z0-9_]*|<[^>]+>", tok):
            out.append(f"\\fI{esc(tok)}\\fR")
        else:
            out.append(esc(tok))
    return "".join(out)


def tagged(entries, heading):
    lines = []
    if heading:
        lines.append(f".SS {esc(heading)}")
    for e in entries:
        lines += [".TP", spec_roff(e.spec), esc(e.text) if e.text else "\\&"]
    return lines


def section(help_, kind):
    groups = [(h, [e for e in es if e.kind == kind]) for h, es in help_.groups]
    groups = [(h, es) for h, es in groups if es]
    lines = []
    for heading, es in groups:
        lines += tagged(es, heading if len(groups) > 1 else None)
    return lines


def synopsis(help_):
    lines = []
    for u in help_.usage:
        words = u.split()
        cmd = [w for w in words if re.fullmatch(r"[a-z][a-z0-9-]*", w)]
        n = 1
        while n < len(words) and n < 2 and words[n] in cmd and not words[n].startswith("-"):
            n += 1
        lines.append(f".B {esc(' '.join(words[:n]))}")
        rest = " ".join(words[n:])
        if rest:
            lines.append(spec_roff(rest))
        lines.append(".br")
    return lines[:-1]


def exit_status(help_):
    if help_.exit:
        return [l for c, m in help_.exit for l in (".TP", f"\\fB{c}\\fR", esc(m))]
    if help_.exit_text:
        return [esc(help_.exit_text)]
    return ["See", ".BR mxsurvey (1)."]


def fill(template, fields, page):
    out = []
    for line in template.splitlines():
        m = re.fullmatch(r"@([A-Z_]+)@", line.strip())
        if m and m[1] in fields and isinstance(fields[m[1]], list):
            if not fields[m[1]]:
                raise SystemExit(f"{page}: --help has nothing for @{m[1]}@")
            out += fields[m[1]]
            continue

        def inline(mm):
            v = fields.get(mm[1])
            if v is None or isinstance(v, list):
                raise SystemExit(f"{page}: unknown placeholder @{mm[1]}@")
            return v
        out.append(re.sub(r"@([A-Z_]+)@", inline, line))
    return "\n".join(out) + "\n"


def page_date(paths):
    sde = os.environ.get("SOURCE_DATE_EPOCH")
    t = int(sde) if sde else max(int(os.path.getmtime(p)) for p in paths)
    return time.strftime("%Y-%m-%d", time.gmtime(t))


def command_of(page_path):
    name = os.path.basename(page_path).split(".")[0]
    return name[len("mxsurvey-"):] if name.startswith("mxsurvey-") else ""


def do_man(a):
    template = open(a.page, encoding="utf-8").read()
    fields = {"VERSION": a.version, "DATE": page_date([a.page, __file__])}
    if "@" in re.sub(r"@(VERSION|DATE)@", "", template):
        command = command_of(a.page)
        top = Help(run_help(a.bin, ""))
        help_ = Help(run_help(a.bin, command)) if command else top
        summary = {e.spec: e.text for e in top.entries("item")}
        fields.update({
            "SUMMARY": esc(summary.get(command, "")) if command else None,
            "SYNOPSIS": synopsis(help_),
            "DESCRIPTION": [esc(p) for p in help_.paragraph],
            "OPTIONS": section(help_, "option"),
            "COMMANDS": section(help_, "item"),
            "EXIT_STATUS": exit_status(help_),
        })
        fields = {k: v for k, v in fields.items() if v is not None}
    text = fill(template, fields, a.page)
    with open(a.output, "w", encoding="utf-8") as f:
        f.write(text)


# --- bash completion --------------------------------------------------------------------

def arg_words(arg):
    """Words to offer for an option's argument, or a compgen action."""
    if arg in ("FILE", "FILE...", "DOMAINS_FILE"):
        return "-f"
    if arg == "DIR":
        return "-d"
    if arg in ("LEVEL", "L"):
        return "error warn info debug"
    return None


def do_completion(a):
    top = Help(run_help(a.bin, ""))
    commands = [e.spec for e in top.entries("item")]
    lines = [
        "# bash completion for mxsurvey: generated by man/helpdoc.py from 'mxsurvey --help'",
        "# and every 'mxsurvey COMMAND --help'; do not edit.",
        "_mxsurvey()",
        "{",
        "\tlocal cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}",
        "\tlocal cmd=${COMP_WORDS[1]} words=\"\" action=\"\" i sub=\"\"",
        "\tCOMPREPLY=()",
        "\tif [ \"$COMP_CWORD\" -eq 1 ]; then",
        f"\t\tCOMPREPLY=($(compgen -W \"{' '.join(commands)} --help --version\" -- \"$cur\"))",
        "\t\treturn 0",
        "\tfi",
        "\tcase $cmd in",
    ]
    for c in commands:
        h = Help(run_help(a.bin, c))
        opts = h.option_names()
        subs = [e.spec.split()[0] for e in h.entries("item")]
        takes = {}
        for e in h.entries("option"):
            m = re.search(rf"(?:[ =])({ARG})$", e.spec)
            if m:
                for n in e.names():
                    takes[n] = arg_words(m[1]) or ""
        lines.append(f"\t{c})")
        lines.append("\t\tcase $prev in")
        by_action = {}
        for n, act in sorted(takes.items()):
            by_action.setdefault(act, []).append(n)
        for act, names in sorted(by_action.items()):
            if act in ("-f", "-d"):
                body = f"COMPREPLY=($(compgen {act} -- \"$cur\"))"
            elif act:
                body = f"COMPREPLY=($(compgen -W \"{act}\" -- \"$cur\"))"
            else:
                body = ":"
            lines.append(f"\t\t{'|'.join(names)}) {body}; return 0 ;;")
        lines.append("\t\tesac")
        lines.append(f"\t\twords=\"{' '.join(opts)}\"")
        if subs:
            lines += [
                "\t\tfor ((i = 2; i < COMP_CWORD; i++)); do",
                "\t\t\tcase ${COMP_WORDS[i-1]} in "
                + ("|".join(sorted(takes)) or "--") + ") continue ;; esac",
                "\t\t\tcase ${COMP_WORDS[i]} in -*) ;; *) sub=${COMP_WORDS[i]}; break ;; esac",
                "\t\tdone",
                "\t\tif [ -z \"$sub\" ]; then",
                f"\t\t\tCOMPREPLY=($(compgen -W \"$words {' '.join(subs)}\" -- \"$cur\"))",
                "\t\t\treturn 0",
                "\t\tfi",
            ]
        lines.append("\t\t;;")
    lines += [
        "\t*) return 0 ;;",
        "\tesac",
        "\tif [[ $cur == -* ]]; then",
        "\t\tCOMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))",
        "\telse",
        "\t\tCOMPREPLY=($(compgen -f -- \"$cur\"))",
        "\tfi",
        "}",
        "complete -o filenames -F _mxsurvey mxsurvey",
    ]
    with open(a.output, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def do_options(a):
    for n in Help(run_help(a.bin, a.command)).option_names():
        print(n)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    m = sub.add_parser("man")
    m.add_argument("--bin", required=True)
    m.add_argument("--version", required=True)
    m.add_argument("-o", "--output", required=True)
    m.add_argument("page")
    c = sub.add_parser("completion")
    c.add_argument("--bin", required=True)
    c.add_argument("-o", "--output", required=True)
    o = sub.add_parser("options")
    o.add_argument("--bin", required=True)
    o.add_argument("command", nargs="?", default="")
    a = p.parse_args()
    {"man": do_man, "completion": do_completion, "options": do_options}[a.what](a)


if __name__ == "__main__":
    sys.exit(main())
