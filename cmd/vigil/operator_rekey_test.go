package main

import (
	"regexp"
	"strings"
	"testing"
)

// TestRekeyAndGenerateRoot: a rekey with new holders and a root token
// generation (OTP flow), each share audited with its number and holder
// and no share, new share or one-time pad in the audit log.
func TestRekeyAndGenerateRoot(t *testing.T) {
	s, logPath := mustAuditedUninit(t, nil)
	out := mustOK(t, "operator", "init", "-key-shares=3", "-key-threshold=2", "-key-holders=alice,bob,carol")
	m := unsealKeyRE.FindAllStringSubmatch(out, -1)
	keys := []string{m[0][2], m[1][2], m[2][2]}
	mustOK(t, "operator", "unseal", keys[0])
	mustOK(t, "operator", "unseal", keys[2])
	root := regexp.MustCompile(`(?m)^Initial Root Token: (\S+)$`).FindStringSubmatch(out)[1]

	// Rekey: shares need no token; the nonce comes from -init.
	init := mustOK(t, "operator", "rekey", "-init", "-key-shares=3", "-key-threshold=2", "-key-holders=dave,erin,frank")
	nonce := tableValue(t, init, "Nonce")
	runCLI(t, "operator", "rekey", "-nonce=wrong", keys[0]).wantCode(t, 2, "incorrect nonce")
	r := mustOK(t, "operator", "rekey", "-nonce="+nonce, keys[1])
	if tableValue(t, r, "Share Given") != "share 2 (bob)" || tableValue(t, r, "Rekey Progress") != "1/2" {
		t.Fatalf("rekey step 1:\n%s", r)
	}
	runCLI(t, "operator", "rekey", "-nonce="+nonce, keys[1]).wantCode(t, 2, "already provided")
	done := mustOK(t, "operator", "rekey", "-nonce="+nonce, keys[2])
	nk := regexp.MustCompile(`(?m)^Key (\d) \((\w+)\): (\S+)$`).FindAllStringSubmatch(done, -1)
	if len(nk) != 3 || nk[0][2] != "dave" || nk[2][2] != "frank" {
		t.Fatalf("rekey result:\n%s", done)
	}
	newKeys := []string{nk[0][3], nk[1][3], nk[2][3]}

	// The old shares no longer work; the new ones do.
	t.Setenv("VIGIL_TOKEN", root)
	mustOK(t, "operator", "seal")
	runCLI(t, "operator", "unseal", keys[0]).wantCode(t, 0)
	runCLI(t, "operator", "unseal", keys[1]).wantCode(t, 2, "unseal failed")
	mustOK(t, "operator", "unseal", newKeys[0])
	if got := tableValue(t, mustOK(t, "operator", "unseal", newKeys[1]), "Sealed"); got != "false" {
		t.Fatalf("new keys did not unseal: %s", got)
	}

	// Root generation with the OTP the server makes.
	t.Setenv("VIGIL_TOKEN", "")
	gi := mustOK(t, "operator", "generate-root", "-init")
	otp, gnonce := tableValue(t, gi, "OTP"), tableValue(t, gi, "Nonce")
	if len(otp) != 28 {
		t.Fatalf("otp %q", otp)
	}
	runCLI(t, "operator", "generate-root", "-nonce="+gnonce, keys[2]).wantCode(t, 2, "does not match")
	g1 := mustOK(t, "operator", "generate-root", "-nonce="+gnonce, newKeys[2])
	if tableValue(t, g1, "Share Given") != "share 3 (frank)" {
		t.Fatalf("generate-root step 1:\n%s", g1)
	}
	g2 := mustOK(t, "operator", "generate-root", "-nonce="+gnonce, newKeys[0])
	enc := tableValue(t, g2, "Encoded Token")
	tok := strings.TrimSpace(mustOK(t, "operator", "generate-root", "-decode="+enc, "-otp="+otp))
	if !strings.HasPrefix(tok, "hvs.") || tok == root {
		t.Fatalf("decoded token %q", tok)
	}
	t.Setenv("VIGIL_TOKEN", tok)
	if got := mustOK(t, "token", "lookup", "-field=policies"); got != "[root]" {
		t.Fatalf("generated token policies %q", got)
	}

	log, lines := auditLines(t, logPath)
	wantNoShares(t, log, append(keys, newKeys...)...)
	if strings.Contains(log, otp) {
		t.Fatal("the audit log contains the one-time pad")
	}
	ok, _ := submissions(lines, "sys/rekey/update")
	if strings.Join(ok, ",") != "2 bob,3 carol" {
		t.Fatalf("audited rekey shares: %q", ok)
	}
	ok, failed := submissions(lines, "sys/generate-root/update")
	if strings.Join(ok, ",") != "3 frank,1 dave" || len(failed) != 1 {
		t.Fatalf("audited generate-root shares: %q, failed %q", ok, failed)
	}
	_ = s
}
