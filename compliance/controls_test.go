package compliance

import (
	"strings"
	"testing"
)

func TestCatalogue(t *testing.T) {
	ids := []string{H312a2i, H312a2ii, H312b, H312c1, H312c2, H312d, H308a1iiD, H308a3iiC, H308a4iiB, H308a4iiC,
		H308a5iiC, H308a7i, H308a7iiA, H308a7iiD, H316b1, H316b2i, H316b2iii, NITGAudit, NITGPolicy, NITGBCP, NITGISA, NCRGRecord, NCRGProt,
		NCRGBackup, NCRGClock, NCRGCentr, NCRG71d}
	seen := map[string]bool{}
	for _, id := range ids {
		c := MustLookup(id)
		if seen[id] {
			t.Fatalf("duplicate %s", id)
		}
		seen[id] = true
		if c.Citation == "" || c.Title == "" || c.Regulation == "" {
			t.Errorf("%s incomplete: %+v", id, c)
		}
		switch c.Confidence {
		case Verified, ThirdParty, Paraphrase, Unconfirmed:
		default:
			t.Errorf("%s: confidence %q", id, c.Confidence)
		}
		if c.Text == "" && c.Note == "" {
			t.Errorf("%s: neither text nor a note saying why there is none", id)
		}
	}
	if len(Controls()) != len(ids) {
		t.Fatalf("catalogue has %d controls, test lists %d", len(Controls()), len(ids))
	}
	// The reference could not verify any NRB audit wording: every NRB
	// control except the [T] IT-policy review must be labelled [U].
	for _, c := range Controls() {
		if c.Framework == NRB && c.ID != NITGPolicy && c.Confidence != Unconfirmed {
			t.Errorf("NRB control %s labelled %s; the reference has it [U]", c.ID, c.Confidence)
		}
		if c.Framework == NRB && c.Confidence == Unconfirmed && !strings.Contains(c.Note, "[U]") && !strings.Contains(c.Note, "unverified") {
			t.Errorf("NRB control %s does not say it is unverified: %q", c.ID, c.Note)
		}
	}
	// Spot-check wording against the reference.
	if MustLookup(H312b).Text != "Implement hardware, software, and/or procedural mechanisms that record and examine activity in information systems that contain or use electronic protected health information." {
		t.Fatal("164.312(b) wording drifted from the reference")
	}
	if MustLookup(H308a5iiC).Confidence != ThirdParty {
		t.Fatal("164.308(a)(5)(ii)(C) is [T] in the reference")
	}
	for _, c := range Checks() {
		for _, id := range c.Controls {
			if _, ok := Lookup(id); !ok {
				t.Errorf("check %s maps to unknown control %s", c.ID, id)
			}
		}
	}
}
