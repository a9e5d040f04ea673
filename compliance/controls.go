// Package compliance holds the regulatory controls Vigil's reports cite
// (HIPAA Security Rule, Nepal Rastra Bank guidelines) and the compliance
// checks: the failure patterns that bite secrets servers (broad policies,
// immortal tokens, a single audit device, no tested backup, unseal key
// custody), each finding mapped to the controls it weakens.
//
// Citations and wording come from the project's regulatory reference
// (COMPLIANCE-REFERENCE.md). Every control carries the reference's
// confidence label: V (official or archived government copy), T
// (third-party copy), P (paraphrase), U (unconfirmed). Reports print the
// label next to the text; nothing here is legal advice, and every citation
// should be checked against the live eCFR, HHS and NRB pages.
package compliance

import "sort"

// Confidence labels, as in the regulatory reference.
const (
	Verified    = "V" // wording from an official or archived government copy
	ThirdParty  = "T" // wording from a third-party copy
	Paraphrase  = "P" // paraphrase
	Unconfirmed = "U" // unconfirmed: numbering and wording not verified
)

// ConfidenceText explains a label in a sentence.
func ConfidenceText(label string) string {
	switch label {
	case Verified:
		return "wording from an official or archived government copy"
	case ThirdParty:
		return "wording from a third-party copy; check it against the official source"
	case Paraphrase:
		return "paraphrase, not the regulation's wording"
	case Unconfirmed:
		return "unconfirmed: the numbering and wording could not be verified against the primary text"
	}
	return "unknown"
}

// Frameworks.
const (
	HIPAA = "HIPAA"
	NRB   = "NRB"
)

// Control is one citable control.
type Control struct {
	ID        string `json:"id"`
	Framework string `json:"framework"`
	// Regulation names the instrument the citation belongs to.
	Regulation string `json:"regulation"`
	Citation   string `json:"citation"`
	Title      string `json:"title"`
	// Kind is HIPAA's R (required), A (addressable) or Std (standard);
	// empty for NRB.
	Kind string `json:"kind,omitempty"`
	// Text is the quoted or paraphrased requirement; empty when no wording
	// could be verified (then Note says so).
	Text       string `json:"text,omitempty"`
	Confidence string `json:"confidence"`
	Source     string `json:"source,omitempty"`
	Note       string `json:"note,omitempty"`
}

// Label is the citation with its confidence label, e.g. "45 CFR 164.312(b) [V]".
func (c Control) Label() string { return c.Citation + " [" + c.Confidence + "]" }

const (
	hipaaReg   = "HIPAA Security Rule, 45 CFR Part 164 Subpart C"
	hipaaSrc   = "https://www.ecfr.gov/current/title-45/subtitle-A/subchapter-C/part-164/subpart-C"
	nrbITG     = "NRB Information Technology Guidelines (Bank Supervision Department, August 2012)"
	nrbITGSrc  = "https://ictbyte.com/bank/it-guidelines-nepal-rastra-bank-nrb (reproduction of the contents)"
	nrbCRG     = "NRB Cyber Resilience Guidelines 2023 (Payment Systems Department, August 2023)"
	nrbCRGSrc  = "https://www.nrb.org.np/contents/uploads/2023/08/Cyber-Resilience-Guidelines-2023.pdf"
	crgU       = "Only a third-party paraphrase was available; the control numbers (83-86) and wording are unverified [U]. Check them against the NRB PDF before relying on this mapping."
	itgU       = "The guideline's section titles are confirmed from a reproduction; its wording on this topic is unverified [U]."
	hipaaT     = "Wording from a third-party copy [T]; check it against the eCFR."
	h308a7U    = "Not in the project's regulatory reference: wording recalled from the Security Rule, not checked against a retrieved copy [U]; check it against the eCFR."
	noRetainTx = "The rule text sets no log retention period: the 6-year limit applies to (b)(1) documentation; keeping raw logs 6 years is a common interpretation, not text."
)

// Control IDs used by checks and reports.
const (
	H312a2i    = "hipaa-164.312(a)(2)(i)"
	H312a2ii   = "hipaa-164.312(a)(2)(ii)"
	H312b      = "hipaa-164.312(b)"
	H312c1     = "hipaa-164.312(c)(1)"
	H312c2     = "hipaa-164.312(c)(2)"
	H312d      = "hipaa-164.312(d)"
	H308a1iiD  = "hipaa-164.308(a)(1)(ii)(D)"
	H308a3iiC  = "hipaa-164.308(a)(3)(ii)(C)"
	H308a4iiB  = "hipaa-164.308(a)(4)(ii)(B)"
	H308a4iiC  = "hipaa-164.308(a)(4)(ii)(C)"
	H308a5iiC  = "hipaa-164.308(a)(5)(ii)(C)"
	H308a7i    = "hipaa-164.308(a)(7)(i)"
	H308a7iiA  = "hipaa-164.308(a)(7)(ii)(A)"
	H308a7iiD  = "hipaa-164.308(a)(7)(ii)(D)"
	H316b1     = "hipaa-164.316(b)(1)"
	H316b2i    = "hipaa-164.316(b)(2)(i)"
	H316b2iii  = "hipaa-164.316(b)(2)(iii)"
	NITGAudit  = "nrb-itg-2012-information-security-audit-trails"
	NITGPolicy = "nrb-itg-2012-it-governance-policy-review"
	NITGBCP    = "nrb-itg-2012-bcp-dr"
	NITGISA    = "nrb-itg-2012-is-audit"
	NCRGRecord = "nrb-crg-2023-83-86-event-recording"
	NCRGProt   = "nrb-crg-2023-83-86-audit-data-protected"
	NCRGBackup = "nrb-crg-2023-83-86-logs-backed-up"
	NCRGClock  = "nrb-crg-2023-83-86-timestamps-synchronised"
	NCRGCentr  = "nrb-crg-2023-83-86-events-centralised"
	NCRG71d    = "nrb-crg-2023-71d-mfa"
)

var catalogue = []Control{
	{ID: H312a2i, Framework: HIPAA, Regulation: hipaaReg, Citation: "45 CFR 164.312(a)(2)(i)", Title: "Unique user identification", Kind: "R",
		Text: "Assign a unique name and/or number for identifying and tracking user identity.", Confidence: Verified, Source: hipaaSrc},
	{ID: H312a2ii, Framework: HIPAA, Regulation: hipaaReg, Citation: "45 CFR 164.312(a)(2)(ii)", Title: "Emergency access procedure", Kind: "R",
		Text: "Establish (and implement as needed) procedures for obtaining necessary electronic protected health information during an emergency.", Confidence: Verified, Source: hipaaSrc},
	{ID: H312b, Framework: HIPAA, Regulation: hipaaReg, Citation: "45 CFR 164.312(b)", Title: "Audit controls", Kind: "Std",
		Text: "Implement hardware, software, and/or procedural mechanisms that record and examine activity in information systems that contain or use electronic protected health information.", Confidence: Verified, Source: hipaaSrc},
	{ID: H312c1, Framework: HIPAA, Regulation: hipaaReg, Citation: "45 CFR 164.312(c)(1)", Title: "Integrity", Kind: "Std",
		Text: "Implement policies and procedures to protect electronic protected health information from improper alteration or destruction.", Confidence: Verified, Source: hipaaSrc,
		Note: "Applied here to the audit records themselves: an interpretation, not text."},
	{ID: H312c2, Framework: HIPAA, Regulation: hipaaReg, Citation: "45 CFR 164.312(c)(2)", Title: "Mechanism to authenticate electronic protected health information", Kind: "A",
		Text: "Implement electronic mechanisms to corroborate that electronic protected health information has not been altered or destroyed in an unauthorized manner.", Confidence: Verified, Source: hipaaSrc},
	{ID: H312d, Framework: HIPAA, Regulation: hipaaReg, Citation: "45 CFR 164.312(d)", Title: "Person or entity authentication", Kind: "Std",
		Text: "Implement procedures to verify that a person or entity seeking access to electronic protected health information is the one claimed.", Confidence: Verified, Source: hipaaSrc},
	{ID: H308a1iiD, Framework: HIPAA, Regulation: hipaaReg, Citation: "45 CFR 164.308(a)(1)(ii)(D)", Title: "Information system activity review", Kind: "R",
		Text: "Implement procedures to regularly review records of information system activity, such as audit logs, access reports, and security incident tracking reports.", Confidence: Verified, Source: hipaaSrc,
		Note: "The rule sets no review frequency. The OCR audit protocol [T] checks that reviews were timely and certified by appropriate personnel."},
	{ID: H308a3iiC, Framework: HIPAA, Regulation: hipaaReg, Citation: "45 CFR 164.308(a)(3)(ii)(C)", Title: "Termination procedures", Kind: "A",
		Text: "Implement procedures for terminating access to electronic protected health information when the employment of, or other arrangement with, a workforce member ends or as required by determinations made as specified in paragraph (a)(3)(ii)(B) of this section.", Confidence: ThirdParty, Source: "https://www.law.cornell.edu/cfr/text/45/164.308", Note: hipaaT},
	{ID: H308a4iiB, Framework: HIPAA, Regulation: hipaaReg, Citation: "45 CFR 164.308(a)(4)(ii)(B)", Title: "Access authorization", Kind: "A",
		Text: "Policies and procedures for granting access to ePHI, \"for example, through access to a workstation, transaction, program, process, or other mechanism.\"", Confidence: ThirdParty, Source: "https://www.law.cornell.edu/cfr/text/45/164.308", Note: hipaaT},
	{ID: H308a4iiC, Framework: HIPAA, Regulation: hipaaReg, Citation: "45 CFR 164.308(a)(4)(ii)(C)", Title: "Access establishment and modification", Kind: "A",
		Text: "Policies and procedures that, based on the access-authorization policies, \"establish, document, review, and modify a user's right of access to a workstation, transaction, program, or process.\"", Confidence: ThirdParty, Source: "https://www.law.cornell.edu/cfr/text/45/164.308", Note: hipaaT},
	{ID: H308a5iiC, Framework: HIPAA, Regulation: hipaaReg, Citation: "45 CFR 164.308(a)(5)(ii)(C)", Title: "Log-in monitoring", Kind: "A",
		Text: "Procedures for monitoring log-in attempts and reporting discrepancies.", Confidence: ThirdParty, Source: "https://www.law.cornell.edu/cfr/text/45/164.308", Note: hipaaT},
	{ID: H308a7i, Framework: HIPAA, Regulation: hipaaReg, Citation: "45 CFR 164.308(a)(7)(i)", Title: "Contingency plan", Kind: "Std",
		Text:       "Establish (and implement as needed) policies and procedures for responding to an emergency or other occurrence (for example, fire, vandalism, system failure, and natural disaster) that damages systems that contain electronic protected health information.",
		Confidence: Unconfirmed, Source: hipaaSrc, Note: h308a7U},
	{ID: H308a7iiA, Framework: HIPAA, Regulation: hipaaReg, Citation: "45 CFR 164.308(a)(7)(ii)(A)", Title: "Data backup plan", Kind: "R",
		Text: "Establish and implement procedures to create and retrieve exact copies of electronic protected health information.", Confidence: Unconfirmed, Source: hipaaSrc,
		Note: h308a7U + " Applied here to automated snapshots of the encrypted storage, kept off the node and restored in drills."},
	{ID: H308a7iiD, Framework: HIPAA, Regulation: hipaaReg, Citation: "45 CFR 164.308(a)(7)(ii)(D)", Title: "Testing and revision procedures", Kind: "A",
		Text: "Implement procedures for periodic testing and revision of contingency plans.", Confidence: Unconfirmed, Source: hipaaSrc,
		Note: h308a7U + " Applied here to two tests of the contingency plan: a key-custody drill tests that the shares needed to recover the server are still held, and a restore drill tests that the stored snapshots restore; an interpretation, not text."},
	{ID: H316b1, Framework: HIPAA, Regulation: hipaaReg, Citation: "45 CFR 164.316(b)(1)", Title: "Documentation", Kind: "Std",
		Text: "Keep policies and procedures in written (which may be electronic) form, and \"a written (which may be electronic) record of the action, activity, or assessment\" the Subpart requires.", Confidence: Verified, Source: hipaaSrc,
		Note: "The quoted part is [V]; the rest of the sentence is a paraphrase."},
	{ID: H316b2i, Framework: HIPAA, Regulation: hipaaReg, Citation: "45 CFR 164.316(b)(2)(i)", Title: "Time limit", Kind: "R",
		Text: "Retain the documentation required by paragraph (b)(1) of this section for 6 years from the date of its creation or the date when it last was in effect, whichever is later.", Confidence: Verified, Source: hipaaSrc, Note: noRetainTx},
	{ID: H316b2iii, Framework: HIPAA, Regulation: hipaaReg, Citation: "45 CFR 164.316(b)(2)(iii)", Title: "Updates", Kind: "R",
		Text: "Review documentation periodically, and update as needed, in response to environmental or operational changes affecting the security of the electronic protected health information.", Confidence: Verified, Source: hipaaSrc},

	{ID: NITGAudit, Framework: NRB, Regulation: nrbITG, Citation: "NRB IT Guidelines 2012, Information Security (p6): audit trails", Title: "Audit trails",
		Confidence: Unconfirmed, Source: nrbITGSrc, Note: "A secondary summary lists \"audit trails\" under Information Security. " + itgU},
	{ID: NITGPolicy, Framework: NRB, Regulation: nrbITG, Citation: "NRB IT Guidelines 2012, IT Governance (p5)", Title: "IT policy review",
		Text: "IT policy should be reviewed at least annually.", Confidence: ThirdParty, Source: "https://www.kodeonix.com/it-guidelines-of-nepal-rastra-bank/",
		Note: "Wording from a third-party reproduction [T]."},
	{ID: NITGBCP, Framework: NRB, Regulation: nrbITG, Citation: "NRB IT Guidelines 2012, BCP/DR (p13)", Title: "Business continuity and disaster recovery",
		Confidence: Unconfirmed, Source: nrbITGSrc, Note: "Section title confirmed; " + itgU},
	{ID: NITGISA, Framework: NRB, Regulation: nrbITG, Citation: "NRB IT Guidelines 2012, IS Audit (p15)", Title: "Information systems audit",
		Confidence: Unconfirmed, Source: nrbITGSrc, Note: "Section title confirmed; " + itgU},
	{ID: NCRGRecord, Framework: NRB, Regulation: nrbCRG, Citation: "NRB CRG 2023, controls 83-86 (numbering unverified)", Title: "Detected events recorded with event type, time and user or address",
		Text: "Detected events should be recorded with information such as event type, time and user or address.", Confidence: Unconfirmed, Source: nrbCRGSrc, Note: crgU},
	{ID: NCRGProt, Framework: NRB, Regulation: nrbCRG, Citation: "NRB CRG 2023, controls 83-86 (numbering unverified)", Title: "Audit data protected",
		Text: "Audit data should be protected.", Confidence: Unconfirmed, Source: nrbCRGSrc, Note: crgU},
	{ID: NCRGBackup, Framework: NRB, Regulation: nrbCRG, Citation: "NRB CRG 2023, controls 83-86 (numbering unverified)", Title: "Logs securely backed up",
		Text: "Logs [should be] securely backed up.", Confidence: Unconfirmed, Source: nrbCRGSrc, Note: crgU},
	{ID: NCRGClock, Framework: NRB, Regulation: nrbCRG, Citation: "NRB CRG 2023, controls 83-86 (numbering unverified)", Title: "Timestamps synchronised",
		Text: "Timestamps [should be] synchronised.", Confidence: Unconfirmed, Source: nrbCRGSrc, Note: crgU},
	{ID: NCRGCentr, Framework: NRB, Regulation: nrbCRG, Citation: "NRB CRG 2023, controls 83-86 (numbering unverified)", Title: "Events centralised and correlated",
		Text: "Events [should be] centralised and correlated across relevant systems.", Confidence: Unconfirmed, Source: nrbCRGSrc, Note: crgU},
	{ID: NCRG71d, Framework: NRB, Regulation: nrbCRG, Citation: "NRB CRG 2023, control 71(d) (numbering unverified)", Title: "Multi-factor authentication for critical systems, processes and roles",
		Text: "MFA for critical systems, processes and roles.", Confidence: Unconfirmed, Source: nrbCRGSrc,
		Note: "Known only from a third-party paraphrase; numbering and wording unverified [U]."},
}

var byID = func() map[string]Control {
	m := make(map[string]Control, len(catalogue))
	for _, c := range catalogue {
		m[c.ID] = c
	}
	return m
}()

// Controls returns the catalogue, HIPAA first, in citation order.
func Controls() []Control {
	out := append([]Control(nil), catalogue...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Framework < out[j].Framework })
	return out
}

// Lookup returns a control by ID.
func Lookup(id string) (Control, bool) {
	c, ok := byID[id]
	return c, ok
}

// MustLookup is Lookup for IDs known at compile time; it panics on a typo
// (tests cover every constant).
func MustLookup(id string) Control {
	c, ok := byID[id]
	if !ok {
		panic("compliance: unknown control " + id)
	}
	return c
}

// NRBCaveat is printed on every NRB report and NRB-mapped finding.
const NRBCaveat = "No Nepal Rastra Bank primary text on audit trails, log retention, privileged-access review or review frequency could be read for this product's reference. " +
	"NRB control numbers and wording shown here are unverified [U] unless labelled otherwise: they come from third-party summaries of the IT Guidelines 2012 and the Cyber Resilience Guidelines 2023. " +
	"Verify every citation against the NRB publications before relying on this mapping."

// HIPAACaveat is printed on every HIPAA report.
const HIPAACaveat = "Citations are labelled [V] official or archived government copy, [T] third-party copy, [P] paraphrase, [U] unconfirmed. " +
	"Check each against the live eCFR and HHS pages. The Security Rule sets no audit-log retention period or review frequency; " +
	"the 6-year retention in 164.316(b)(2)(i) applies to required documentation, and applying it to raw logs is an interpretation."
