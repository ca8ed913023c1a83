#!/usr/bin/env python3
"""The declared tables (common/outcome.h, common/record_fields.h) against what they must
agree with: the JSON writer's output, docs/record.md, and the schema in sql/migrations.

usage: test_fields.py DUMP_FIELDS SOURCE_DIR
"""
import glob
import json
import os
import re
import subprocess
import sys
import unittest

DUMP, SRC = sys.argv[1], sys.argv[2]


def tables():
    out = subprocess.run([DUMP], check=True, stdout=subprocess.PIPE, text=True).stdout
    t = {"outcome": [], "phase": [], "object": [], "field": [], "nfield": []}
    for ln in out.splitlines():
        kind, _, rest = ln.partition(" ")
        t[kind].append(rest.split(" "))
    return t


def sql_text():
    text = ""
    for f in sorted(glob.glob(os.path.join(SRC, "sql", "migrations", "*.sql"))):
        with open(f) as fh:
            text += fh.read() + "\n"
    return text


def sql_names(text, table):
    m = re.search(r"INSERT INTO %s VALUES(.*?);" % table, text, re.S)
    return {name: int(code) for code, name in re.findall(r"\((\d+), '([^']+)'\)", m.group(1))}


def json_paths(obj, prefix=""):
    for k, v in obj.items():
        yield prefix + k
        # chain entries and transcript entries are values of one field, not fields
        if isinstance(v, dict):
            yield from json_paths(v, prefix + k + ".")


class Fields(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t = tables()
        cls.fields = {f[0]: (f[1], f[2]) for f in cls.t["field"]}
        cls.objects = [o[0] if o else "" for o in cls.t["object"]]
        with open(os.path.join(SRC, "docs", "record.md")) as fh:
            cls.doc = fh.read()
        cls.sql = sql_text()

    def test_writer_writes_the_table(self):
        """A record with every object present has exactly the declared keys, in order."""
        out = subprocess.run([DUMP, "--record"], check=True, stdout=subprocess.PIPE,
                             text=True).stdout
        rec = json.loads(out)
        got = list(json_paths(rec))
        objs = [o[:-1] for o in self.objects if o]
        want = []
        for path in self.fields:
            for o in objs:
                # an object's key precedes its first field
                if path.startswith(o + ".") and o not in want:
                    want.append(o)
            want.append(path)
        self.assertEqual(got, want)

    def test_docs_name_every_field(self):
        """docs/record.md names every field, and its tables name no field the table lacks."""
        for path in list(self.fields) + [o[:-1] for o in self.objects if o]:
            key = path.rsplit(".", 1)[-1]
            self.assertTrue("`%s`" % key in self.doc or '"%s"' % key in self.doc,
                            "docs/record.md does not mention %s" % path)
        top = self.doc.split("## Top-level fields", 1)[1].split("\n## ", 1)[0]
        tls = self.doc.split("## `tls`", 1)[1].split("\n## ", 1)[0]
        for section, prefix in ((top, ""), (tls, "tls.")):
            for key in re.findall(r"^\| `([a-z_]+)` \|", section, re.M):
                self.assertTrue(prefix + key in self.fields or prefix + key + "." in self.objects,
                                "docs/record.md documents %s%s, the field table lacks it"
                                % (prefix, key))

    def test_schema_has_every_column(self):
        m = re.search(r"CREATE TABLE results \((.*?)\n\) PARTITION", self.sql, re.S)
        cols = set()
        for ln in m.group(1).splitlines():
            w = ln.strip().split()
            if w and w[0] != "PRIMARY" and not w[0].startswith("--"):
                cols.add(w[0])
        for c in re.findall(r"ALTER TABLE results ADD COLUMN (?:IF NOT EXISTS )?([a-z_0-9]+)",
                            self.sql):
            cols.add(c)
        declared = {c for c, _ in self.fields.values() if c != "-"}
        self.assertEqual(cols - {"scan_id", "ip", "port", "extra"}, declared)
        # since 0017 results is a view over result_rows: it shows every column still
        views = re.findall(r"CREATE VIEW results AS\nSELECT (.*?)\nFROM result_rows", self.sql, re.S)
        self.assertTrue(views, "no CREATE VIEW results in sql/migrations")
        shown = []
        for item in re.split(r",\n\t", views[-1]):
            m = re.search(r"(?:\bAS |^r\.)([a-z_0-9]+)$", item.strip())
            self.assertIsNotNone(m, "cannot read the view's column: %s" % item)
            shown.append(m.group(1))
        self.assertEqual(len(shown), len(set(shown)))
        self.assertEqual(set(shown) - {"scan_id", "ip", "port", "extra"}, declared)

    def test_name_line(self):
        """The name line: writer, docs and the result_names table follow its table."""
        nf = {f[0]: (f[1], f[2]) for f in self.t["nfield"]}
        out = subprocess.run([DUMP, "--name"], check=True, stdout=subprocess.PIPE,
                             text=True).stdout
        got = list(json_paths(json.loads(out)))
        want = []
        for path in nf:
            if path.startswith("dane.") and "dane" not in want:
                want.append("dane")
            want.append(path)
        self.assertEqual(got, want)
        section = self.doc.split("## Name lines", 1)[1].split("\n## ", 1)[0]
        for path in nf:
            key = path.rsplit(".", 1)[-1]
            self.assertTrue("`%s`" % key in section or '"%s"' % key in section,
                            "docs/record.md (Name lines) does not mention %s" % path)
        m = re.search(r"CREATE TABLE result_names \((.*?)\n\);", self.sql, re.S)
        cols = set()
        for ln in m.group(1).splitlines():
            w = ln.strip().split()
            if w and w[0] != "PRIMARY" and not w[0].startswith("--"):
                cols.add(w[0])
        for c in re.findall(r"ALTER TABLE result_names ADD COLUMN (?:IF NOT EXISTS )?([a-z_0-9]+)",
                            self.sql):
            cols.add(c)
        declared = {c for c, _ in nf.values() if c != "-"}
        self.assertEqual(cols - {"scan_id", "ip", "port", "name", "extra"}, declared)

    def test_outcomes_and_phases_match_sql(self):
        for kind, table in (("outcome", "outcome_names"), ("phase", "phase_names")):
            sql = sql_names(self.sql, table)
            c = {n: int(code) for n, code in self.t[kind] if int(code) >= 0}
            self.assertEqual(sql.pop("unknown"), 0)
            self.assertEqual(c, sql, table)

    def test_docs_list_every_outcome(self):
        section = self.doc.split("## Outcome classes", 1)[1]
        documented = re.findall(r"^\| `([a-z-]+)` \|", section, re.M)
        self.assertEqual(sorted(documented),
                         sorted(n for n, _ in self.t["outcome"] if n != "none"))


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
