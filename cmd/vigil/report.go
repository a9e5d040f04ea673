package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

func init() {
	registerGroup("report", "Generate audit reports (HIPAA, Nepal Rastra Bank)")
	for _, k := range []struct{ name, title string }{{"hipaa", "HIPAA Security Rule"}, {"nrb", "Nepal Rastra Bank"}} {
		kind := k.name
		register(&command{name: "report " + kind, synopsis: "Generate the " + k.title + " audit report",
			run: func(args []string) int { return runReport(kind, args) }})
	}
}

// reportFormats maps -o extensions to formats.
var reportFormats = map[string]string{".pdf": "pdf", ".html": "html", ".htm": "html", ".csv": "csv", ".json": "json"}

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
	tz := fs.String("tz", "", "time zone of the business hours (default UTC), e.g. Asia/Kathmandu")
	top := fs.String("top", "", "how many identities the top-identities chart shows (default 10)")
	verify := fs.Bool("verify", false, "verify the audit chain on the server before computing the report")
	fs.Lookup("format").Usage = "report format: pdf, html, csv or json (default from -o's extension, else json)"
	fs.Lookup("format").DefValue = ""
	cf.format = ""
	setUsage(fs, "report "+kind+" [options]", `
Generates the `+strings.ToUpper(kind)+` report over a period from the server's audit trail. Every
figure in it can be recomputed with GET /v1/sys/audit/query (the HTML,
CSV and JSON list the query for each). Needs read on sys/reports/`+kind+`.

    $ vigil report `+kind+` -from 2025-01-01 -to 2025-04-01 -format pdf -o q1-`+kind+`.pdf`)
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
	case "pdf", "html", "csv", "json":
	default:
		return usageError("unknown -format %q (want pdf, html, csv or json)", format)
	}
	if format == "pdf" && *out == "" {
		return usageError("a PDF report needs -o FILE")
	}
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	q := map[string][]string{"format": {format}}
	for k, v := range map[string]string{"from": *from, "to": *to, "scope": *scope, "business_hours": *hours, "tz": *tz, "top": *top} {
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
	return 0
}
