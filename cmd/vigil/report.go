package main

import (
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigilsec/vigil/audit"
	"github.com/vigilsec/vigil/reports"
)

func init() {
	registerGroup("report", "Generate audit reports (HIPAA, Nepal Rastra Bank)")
	register(&command{name: "report verify", synopsis: "Verify an evidence bundle offline", run: runReportVerify})
	for _, k := range []struct{ name, title string }{{"hipaa", "HIPAA Security Rule"}, {"nrb", "Nepal Rastra Bank"}} {
		kind := k.name
		register(&command{name: "report " + kind, synopsis: "Generate the " + k.title + " audit report",
			run: func(args []string) int { return runReport(kind, args) }})
	}
}

// reportFormats maps -o extensions to formats.
var reportFormats = map[string]string{".pdf": "pdf", ".html": "html", ".htm": "html", ".csv": "csv", ".json": "json", ".zip": "bundle"}

// runReport is `vigil report hipaa|nrb [--from] [--to] [--format] [-o FILE]`:
// GET sys/reports/<kind> and write the file the server renders.
func runReport(kind string, args []string) int {
	var cf clientFlags
	fs := newFlags("report "+kind, &cf)
	from := fs.String("from", "", "start of the period, inclusive: YYYY-MM-DD or RFC 3339 (default: 30 days before -to)")
	to := fs.String("to", "", "end of the period, exclusive: YYYY-MM-DD or RFC 3339 (default: now)")
	out := fs.String("o", "", "write the report to FILE (the format follows the extension unless -format is given); default stdout")
	scope := fs.String("scope", "", "extra mounts to treat as regulated, comma-separated (mounts tagged phi=true or regulated=true always are)")
	hours := fs.String("business-hours", "", "business hours for off-hours access, HH-HH (default 08-18, Monday to Friday)")
	tz := fs.String("tz", "", "time zone of the period's dates, the per-day charts, every table and the business hours (default Asia/Kathmandu for nrb, UTC for hipaa)")
	fy := fs.String("fiscal-year", "", "a Nepali fiscal year or quarter instead of -from/-to, e.g. 2081/82 or 2081/82-q1")
	top := fs.String("top", "", "how many identities the top-identities chart shows (default 10)")
	rows := fs.String("rows", "", "rows each table prints in the PDF and HTML (default 25; the CSV has every row)")
	verify := fs.Bool("verify", false, "verify the audit chain on the server before computing the report")
	fs.Lookup("format").Usage = "report format: pdf, html, csv, json, or bundle (a signed evidence bundle: every format plus manifest.json; default from -o's extension, else json)"
	fs.Lookup("format").DefValue = ""
	cf.format = ""
	setUsage(fs, "report "+kind+" [options]", `
Generates the `+strings.ToUpper(kind)+` report over a period from the server's audit trail. Every
figure in it can be recomputed with the "vigil audit query --count" command
printed beside it. -format bundle (or -o FILE.zip) writes a signed evidence
bundle: the PDF, HTML, CSV and JSON computed against one checkpoint, with a
manifest signed by the node's checkpoint key ("vigil report verify").
Needs read on sys/reports/`+kind+`.

    $ vigil report `+kind+` -from 2025-01-01 -to 2025-04-01 -format pdf -o q1-`+kind+`.pdf
    $ vigil report `+kind+` -from 2025-01-01 -to 2025-04-01 -o q1-`+kind+`.zip
    $ vigil report nrb -fiscal-year 2081/82-q1 -o q1.zip`)
	pos, code, ok := parseCmd(fs, args)
	if !ok {
		return code
	}
	if c := wantArgs(pos, 0, 0); c != 0 {
		return c
	}
	format := strings.ToLower(cf.format)
	if format == "" || format == "table" {
		format = reportFormats[strings.ToLower(filepath.Ext(*out))]
		if format == "" {
			format = "json"
		}
	}
	switch format {
	case "pdf", "html", "csv", "json", "bundle":
	default:
		return usageError("unknown -format %q (want pdf, html, csv, json or bundle)", format)
	}
	if (format == "pdf" || format == "bundle") && *out == "" {
		return usageError("a %s needs -o FILE", format)
	}
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	q := map[string][]string{"format": {format}}
	for k, v := range map[string]string{"from": *from, "to": *to, "scope": *scope, "business_hours": *hours, "tz": *tz, "top": *top,
		"fiscal_year": *fy, "rows": *rows} {
		if v != "" {
			q[k] = []string{v}
		}
	}
	if *verify {
		q["verify"] = []string{"true"}
	}
	resp, err := client.Logical().ReadRawWithData("sys/reports/"+kind, q)
	if resp != nil {
		defer resp.Body.Close()
	}
	if err != nil {
		return apiError("generating the report", err)
	}
	if *out == "" {
		if _, err := io.Copy(stdout, resp.Body); err != nil {
			return fail("%v", err)
		}
		return 0
	}
	tmp, err := os.CreateTemp(filepath.Dir(*out), filepath.Base(*out)+".tmp-*")
	if err != nil {
		return fail("%v", err)
	}
	defer os.Remove(tmp.Name())
	n, err := io.Copy(tmp, resp.Body)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), *out)
	}
	if err != nil {
		return fail("writing %s: %v", *out, err)
	}
	fmt.Fprintf(stderr, "Wrote %s (%s, %d bytes)\n", *out, format, n)
	if m := resp.Header.Get("X-Vigil-Evidence-Manifest"); m != "" {
		fmt.Fprintf(stderr, "Manifest SHA-256 %s (check with: vigil report verify -pubkey key.pem %s)\n", m, *out)
	}
	return 0
}

// runReportVerify is `vigil report verify [-pubkey FILE] BUNDLE`: checks an
// evidence bundle offline.
func runReportVerify(args []string) int {
	fs := flag.NewFlagSet("report verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pubkey := fs.String("pubkey", "", "the checkpoint public key (PEM, base64 or raw; from vigil audit checkpoint-key -output)")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: vigil report verify [-pubkey FILE] BUNDLE

Checks an evidence bundle (a .zip from "vigil report ... -format bundle", or
the folder it was unpacked into) offline, without a server: the Ed25519
signature over manifest.json and the PDF, the SHA-256 of every file, that
no file is missing or added, that the PDF states the manifest's hash and
that the JSON report names the manifest's checkpoint. Without -pubkey the
key the bundle carries is used and the result says it is not pinned. Exit
status 0 when it verifies, 2 when it does not.

    $ vigil audit checkpoint-key -output key.pem
    $ vigil report verify -pubkey key.pem q1-hipaa.zip

`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 1
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 1
	}
	var pub ed25519.PublicKey
	if *pubkey != "" {
		b, err := os.ReadFile(*pubkey)
		if err != nil {
			return fail("%v", err)
		}
		if pub, err = audit.ParsePublicKey(b); err != nil {
			return fail("%s: %v", *pubkey, err)
		}
	}
	files, err := reports.ReadBundle(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "FAILED: %v\n", err)
		return 2
	}
	c, err := reports.VerifyBundle(files, pub)
	if err != nil {
		fmt.Fprintf(stderr, "FAILED: %v\n", err)
		return 2
	}
	m := c.Manifest
	fmt.Fprintf(stdout, "OK: %s, %s to %s (%s)\n", m.Title, m.From.Format(time.RFC3339), m.To.Format(time.RFC3339), m.TimeZone)
	fmt.Fprintf(stdout, "manifest sha256 %s, signed by key %s", c.ManifestSHA256, c.KeyID)
	if !c.KeyPinned {
		fmt.Fprint(stdout, " (the key the bundle carries: pass -pubkey to pin it)")
	}
	fmt.Fprintln(stdout)
	if cp := m.Checkpoint; cp != nil {
		fmt.Fprintf(stdout, "checkpoint node %s seq %d hash %s\n", cp.NodeID, cp.Seq, cp.Hash)
	}
	for _, f := range c.Files {
		fmt.Fprintf(stdout, "  %-12s sha256:%s %d bytes\n", f.Name, f.SHA256, f.Size)
	}
	return 0
}
