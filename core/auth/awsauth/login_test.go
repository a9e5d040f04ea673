package awsauth

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestCanonicalARN(t *testing.T) {
	for in, want := range map[string]string{
		"arn:aws:iam::123456789012:user/carol":                        "arn:aws:iam::123456789012:user/carol",
		"arn:aws:iam::123456789012:user/team/carol":                   "arn:aws:iam::123456789012:user/team/carol",
		"arn:aws:sts::123456789012:assumed-role/app/i-0abc":           "arn:aws:iam::123456789012:role/app",
		"arn:aws-us-gov:sts::123456789012:assumed-role/app/session-1": "arn:aws-us-gov:iam::123456789012:role/app",
		"arn:aws:iam::123456789012:root":                              "arn:aws:iam::123456789012:root",
	} {
		got, err := canonicalARN(in)
		if err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "arn:aws:s3:::bucket", "arn:aws:sts::1:assumed-role/", "arn:aws:iam::1:user/", "not-an-arn",
		"arn:aws:sts::123456789012:user/moto"} {
		if got, err := canonicalARN(bad); err == nil {
			t.Errorf("%q accepted as %q", bad, got)
		}
	}
}

func FuzzCanonicalARN(f *testing.F) {
	f.Add("arn:aws:sts::123456789012:assumed-role/app/i-0abc")
	f.Add("arn:aws:iam::123456789012:user/carol")
	f.Fuzz(func(t *testing.T, arn string) {
		c, err := canonicalARN(arn)
		if err == nil && !strings.HasPrefix(c, "arn:") {
			t.Fatalf("%q canonicalised to %q", arn, c)
		}
	})
}

func TestArnMatchesGlobs(t *testing.T) {
	bound := []string{"arn:aws:iam::123456789012:role/app-*"}
	if !arnMatches(bound, "arn:aws:iam::123456789012:role/app-billing", "") {
		t.Fatal("glob did not match")
	}
	if arnMatches(bound, "arn:aws:iam::123456789012:user/app-billing", "") {
		t.Fatal("a user matched a role glob")
	}
}

func headerArg(h http.Header) string {
	b, _ := json.Marshal(h)
	return base64.StdEncoding.EncodeToString(b)
}

func TestParseHeadersAndServerID(t *testing.T) {
	h := http.Header{"Authorization": {"AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/sts/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-vault-aws-iam-server-id, Signature=00"},
		"X-Vault-Aws-Iam-Server-Id": {"vigil.example"}}
	got, err := parseHeaders(headerArg(h))
	if err != nil {
		t.Fatal(err)
	}
	if err := checkServerID(got, "vigil.example"); err != nil {
		t.Fatalf("signed server id refused: %v", err)
	}
	if err := checkServerID(got, "other"); err == nil {
		t.Fatal("wrong server id accepted")
	}
	h.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/sts/aws4_request, SignedHeaders=content-type;host, Signature=00")
	got, _ = parseHeaders(map[string]any{"Authorization": h.Get("Authorization"), "X-Vault-AWS-IAM-Server-ID": []any{"vigil.example"}})
	if err := checkServerID(got, "vigil.example"); err == nil || !strings.Contains(err.Error(), "is not signed") {
		t.Fatalf("an unsigned server id header accepted: %v", err)
	}
	if _, err := parseHeaders(headerArg(http.Header{"Content-Type": {"x"}})); err == nil {
		t.Fatal("headers without Authorization accepted")
	}
}
