package reports

import (
	"archive/zip"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/vigilsec/vigil/reports/query"
)

// An evidence bundle is one report request's answer in every format,
// computed once (so against ONE checkpoint), with a manifest and a
// signature an examiner checks offline:
//
//	report.json report.csv report.html   the renderings, listed in the manifest
//	manifest.json                         period, scope, filters, checkpoint, coverage,
//	                                      generator, and the SHA-256 of each file above
//	report.pdf                            prints the SHA-256 of manifest.json on its cover
//	signature.json                        Ed25519 signature, with the node's checkpoint key,
//	                                      of the manifest's and the PDF's SHA-256
//
// The PDF cannot be listed in the manifest whose hash it prints, so the
// signature covers both. `vigil report verify BUNDLE -pubkey key.pem`
// checks everything (VerifyBundle).

// BundleFormat names the bundle layout in manifest.json and signature.json.
const BundleFormat = "vigil-evidence-bundle/1"

// FormatBundle is the format parameter asking for an evidence bundle.
const FormatBundle = "bundle"

// Bundle file names.
const (
	BundleManifest  = "manifest.json"
	BundleSignature = "signature.json"
	BundlePDF       = "report.pdf"
)

// Signer signs evidence with the node's checkpoint key;
// *auditsvc.Subsystem implements it. The signature is Ed25519 over
// EvidenceContext followed by msg (the statement naming what it signs),
// so it can never pass for a checkpoint signature.
type Signer interface {
	SignEvidence(msg []byte) (sig []byte, pub ed25519.PublicKey, err error)
}

// EvidenceContext prefixes every signed evidence statement (it must equal
// the audit subsystem's; TestEvidenceBundle in cmd/vigil checks the two
// against each other through a real server).
const EvidenceContext = "vigil evidence signature v1\n"

// FileDigest is one file of a bundle.
type FileDigest struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
	Size   int    `json:"size"`
}

// Manifest is manifest.json.
type Manifest struct {
	Format      string               `json:"format"`
	Kind        string               `json:"kind"`
	Title       string               `json:"title"`
	NodeID      string               `json:"node_id,omitempty"`
	From        time.Time            `json:"from"`
	To          time.Time            `json:"to"`
	TimeZone    string               `json:"time_zone"`
	Period      string               `json:"period,omitempty"`
	Scope       Scope                `json:"scope"`
	Filters     map[string]string    `json:"filters"`
	Checkpoint  *query.CheckpointRef `json:"checkpoint,omitempty"`
	Coverage    string               `json:"coverage,omitempty"`
	Backend     string               `json:"backend"`
	Generator   string               `json:"generator"`
	GeneratedAt time.Time            `json:"generated_at"`
	Files       []FileDigest         `json:"files"`
}

// Signature is signature.json.
type Signature struct {
	Format         string       `json:"format"`
	ManifestSHA256 string       `json:"manifest_sha256"`
	Files          []FileDigest `json:"files"`
	Algorithm      string       `json:"algorithm"`
	KeyID          string       `json:"key_id"`
	PublicKey      string       `json:"public_key"`
	// Statement is exactly what was signed.
	Statement string `json:"statement"`
	Signature string `json:"signature"`
}

func digest(name string, b []byte) FileDigest {
	s := sha256.Sum256(b)
	return FileDigest{Name: name, SHA256: hex.EncodeToString(s[:]), Size: len(b)}
}

// statement is the signed text: the format, the manifest's hash and each
// file outside the manifest.
func statement(manifestSHA string, files []FileDigest) string {
	var b strings.Builder
	b.WriteString(BundleFormat + "\n")
	b.WriteString(BundleManifest + " sha256:" + manifestSHA + "\n")
	for _, f := range files {
		b.WriteString(f.Name + " sha256:" + f.SHA256 + "\n")
	}
	return b.String()
}

// keyID is the checkpoint key id (audit/chain.KeyID): the first 16 hex
// digits of the key's SHA-256.
func keyID(pub ed25519.PublicKey) string {
	s := sha256.Sum256(pub)
	return hex.EncodeToString(s[:8])
}

// BuildBundle renders r in every format, writes the manifest, signs it
// with s, and returns the zip file and the manifest's SHA-256. filters
// are the request's parameters, recorded as asked. Deterministic for a
// given report, filters and key.
func BuildBundle(r *Report, filters map[string]string, generator string, s Signer) ([]byte, string, error) {
	if s == nil {
		return nil, "", errors.New("reports: evidence bundles need the audit subsystem's signing key")
	}
	files := map[string][]byte{}
	var order []FileDigest
	for _, f := range []struct{ name, format string }{{"report.json", FormatJSON}, {"report.csv", FormatCSV}, {"report.html", FormatHTML}} {
		var buf bytes.Buffer
		if err := Render(&buf, r, f.format); err != nil {
			return nil, "", err
		}
		files[f.name] = buf.Bytes()
		order = append(order, digest(f.name, buf.Bytes()))
	}
	m := Manifest{Format: BundleFormat, Kind: r.Kind, Title: r.Title, NodeID: r.NodeID, From: r.From, To: r.To, TimeZone: r.TimeZone,
		Period: r.Period, Scope: r.Scope, Filters: filters, Checkpoint: r.Checkpoint, Backend: r.Backend, Generator: generator,
		GeneratedAt: r.GeneratedAt, Files: order}
	if m.Filters == nil {
		m.Filters = map[string]string{}
	}
	if r.Coverage != nil {
		m.Coverage = r.Coverage.Status
	}
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, "", err
	}
	mb = append(mb, '\n')
	msha := digest(BundleManifest, mb).SHA256
	pr := *r
	pr.ManifestSHA256 = msha
	var pdf bytes.Buffer
	if err := Render(&pdf, &pr, FormatPDF); err != nil {
		return nil, "", err
	}
	outside := []FileDigest{digest(BundlePDF, pdf.Bytes())}
	st := statement(msha, outside)
	sig, pub, err := s.SignEvidence([]byte(st))
	if err != nil {
		return nil, "", fmt.Errorf("reports: sign the evidence manifest: %w", err)
	}
	sg := Signature{Format: BundleFormat, ManifestSHA256: msha, Files: outside, Algorithm: "ed25519", KeyID: keyID(pub),
		PublicKey: base64.StdEncoding.EncodeToString(pub), Statement: st, Signature: base64.StdEncoding.EncodeToString(sig)}
	sb, err := json.MarshalIndent(sg, "", "  ")
	if err != nil {
		return nil, "", err
	}
	files[BundleManifest], files[BundlePDF], files[BundleSignature] = mb, pdf.Bytes(), append(sb, '\n')
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: n, Method: zip.Deflate, Modified: r.GeneratedAt.UTC()})
		if err != nil {
			return nil, "", err
		}
		if _, err := w.Write(files[n]); err != nil {
			return nil, "", err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, "", err
	}
	return zbuf.Bytes(), msha, nil
}

// BundleCheck is what VerifyBundle found.
type BundleCheck struct {
	Manifest       Manifest
	ManifestSHA256 string
	KeyID          string
	// KeyPinned is true when the signature was checked against the key
	// the examiner supplied (not only the one the bundle carries).
	KeyPinned bool
	Files     []FileDigest
}

// ErrBundle wraps every verification failure.
var ErrBundle = errors.New("evidence bundle does not verify")

func bundleErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBundle, fmt.Sprintf(format, args...))
}

// ReadBundle reads a bundle's files from a zip file or a folder.
func ReadBundle(path string) (map[string][]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	if st.IsDir() {
		ents, err := os.ReadDir(path)
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if e.IsDir() {
				return nil, bundleErr("unexpected folder %s", e.Name())
			}
			b, err := os.ReadFile(filepath.Join(path, e.Name()))
			if err != nil {
				return nil, err
			}
			files[e.Name()] = b
		}
		return files, nil
	}
	zr, err := zip.OpenReader(path)
	if err != nil {
		return nil, bundleErr("%v", err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		if _, dup := files[f.Name]; dup || strings.ContainsAny(f.Name, `/\`) {
			return nil, bundleErr("unexpected entry %q", f.Name)
		}
		rc, err := f.Open()
		if err != nil {
			return nil, bundleErr("%s: %v", f.Name, err)
		}
		b, err := io.ReadAll(io.LimitReader(rc, 1<<30))
		rc.Close()
		if err != nil {
			return nil, bundleErr("%s: %v", f.Name, err)
		}
		files[f.Name] = b
	}
	return files, nil
}

// VerifyBundle checks a bundle offline: the signature over the manifest's
// and the PDF's SHA-256 (with pub when given — the examiner's copy of the
// checkpoint key — else with the key the bundle carries, reported as not
// pinned), every file's SHA-256 and size, that no file is missing or
// extra, that the PDF states the manifest's hash, and that report.json
// names the manifest's checkpoint. Any changed byte fails it.
func VerifyBundle(files map[string][]byte, pub ed25519.PublicKey) (*BundleCheck, error) {
	sb, ok := files[BundleSignature]
	if !ok {
		return nil, bundleErr("no %s", BundleSignature)
	}
	var sg Signature
	if err := json.Unmarshal(sb, &sg); err != nil {
		return nil, bundleErr("%s: %v", BundleSignature, err)
	}
	if sg.Format != BundleFormat || sg.Algorithm != "ed25519" {
		return nil, bundleErr("unknown format %q / algorithm %q", sg.Format, sg.Algorithm)
	}
	// signature.json must be exactly as written: any changed byte fails,
	// even in a member the check does not otherwise rely on.
	if canon, err := json.MarshalIndent(sg, "", "  "); err != nil || !bytes.Equal(append(canon, '\n'), sb) {
		return nil, bundleErr("%s is not as it was written", BundleSignature)
	}
	carried, err := base64.StdEncoding.DecodeString(sg.PublicKey)
	if err != nil || len(carried) != ed25519.PublicKeySize {
		return nil, bundleErr("%s: bad public key", BundleSignature)
	}
	if sg.KeyID != keyID(carried) {
		return nil, bundleErr("%s: key id %s does not name the key it carries (%s)", BundleSignature, sg.KeyID, keyID(carried))
	}
	key, pinned := ed25519.PublicKey(carried), false
	if pub != nil {
		if !bytes.Equal(pub, carried) {
			return nil, bundleErr("the bundle was signed by key %s, not the given key %s", sg.KeyID, keyID(pub))
		}
		key, pinned = pub, true
	}
	sig, err := base64.StdEncoding.DecodeString(sg.Signature)
	if err != nil {
		return nil, bundleErr("%s: bad signature encoding", BundleSignature)
	}
	mb, ok := files[BundleManifest]
	if !ok {
		return nil, bundleErr("no %s", BundleManifest)
	}
	msha := digest(BundleManifest, mb).SHA256
	if msha != sg.ManifestSHA256 {
		return nil, bundleErr("%s has SHA-256 %s, the signature names %s", BundleManifest, msha, sg.ManifestSHA256)
	}
	st := statement(msha, sg.Files)
	if st != sg.Statement {
		return nil, bundleErr("the signed statement does not match the files it names")
	}
	if !ed25519.Verify(key, append([]byte(EvidenceContext), st...), sig) {
		if pinned {
			return nil, bundleErr("the signature does not verify with the given public key (key id %s; the bundle names %s)", keyID(key), sg.KeyID)
		}
		return nil, bundleErr("the signature does not verify")
	}
	var m Manifest
	if err := json.Unmarshal(mb, &m); err != nil {
		return nil, bundleErr("%s: %v", BundleManifest, err)
	}
	if m.Format != BundleFormat {
		return nil, bundleErr("%s: unknown format %q", BundleManifest, m.Format)
	}
	want := map[string]FileDigest{}
	for _, f := range append(append([]FileDigest(nil), m.Files...), sg.Files...) {
		want[f.Name] = f
	}
	for name, b := range files {
		if name == BundleManifest || name == BundleSignature {
			continue
		}
		f, ok := want[name]
		if !ok {
			return nil, bundleErr("%s is not listed in the manifest or the signature", name)
		}
		if got := digest(name, b); got != f {
			return nil, bundleErr("%s has SHA-256 %s (%d bytes), the bundle lists %s (%d bytes)", name, got.SHA256, got.Size, f.SHA256, f.Size)
		}
		delete(want, name)
	}
	for name := range want {
		return nil, bundleErr("%s is listed but missing", name)
	}
	if pdf, ok := files[BundlePDF]; ok && !bytes.Contains(pdf, []byte("evidence manifest sha256:"+msha)) {
		return nil, bundleErr("%s does not state the manifest's hash", BundlePDF)
	}
	if rj, ok := files["report.json"]; ok && m.Checkpoint != nil {
		var r struct {
			Checkpoint *query.CheckpointRef `json:"checkpoint"`
		}
		if err := json.Unmarshal(rj, &r); err != nil || r.Checkpoint == nil || r.Checkpoint.Seq != m.Checkpoint.Seq || r.Checkpoint.Hash != m.Checkpoint.Hash {
			return nil, bundleErr("report.json was not computed against the manifest's checkpoint")
		}
	}
	all := append(append([]FileDigest(nil), m.Files...), sg.Files...)
	return &BundleCheck{Manifest: m, ManifestSHA256: msha, KeyID: keyID(key), KeyPinned: pinned, Files: all}, nil
}
