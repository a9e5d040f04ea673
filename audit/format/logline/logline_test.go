package logline

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"
)

// MustLines reads testdata/chain.log: a real segment written by
// audit/chain (fixed clock and key) holding every Vault entry shape of
// audit/format/vault's golden file, two login entries, a sys/ delete and
// the chain's own records.
func mustLines(tb testing.TB) [][]byte {
	tb.Helper()
	f, err := os.Open("testdata/chain.log")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		out = append(out, append([]byte(nil), sc.Bytes()...))
	}
	return out
}

func TestScanMembersAgreesWithJSON(t *testing.T) {
	lines := mustLines(t)
	if len(lines) < 10 {
		t.Fatalf("only %d lines", len(lines))
	}
	for i, line := range lines {
		m, err := ScanMembers(line)
		if err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		var want struct {
			Seq      uint64 `json:"seq"`
			NodeID   string `json:"node_id"`
			PrevHash string `json:"prev_hash"`
			Hash     string `json:"hash"`
		}
		if err := json.Unmarshal(line, &want); err != nil {
			t.Fatal(err)
		}
		if m.Seq != want.Seq || m.NodeID != want.NodeID || m.PrevHash != want.PrevHash || m.Hash != want.Hash {
			t.Fatalf("line %d: scanned %+v, JSON says %+v", i+1, m, want)
		}
		if m.Seq != uint64(i+1) {
			t.Fatalf("line %d has seq %d", i+1, m.Seq)
		}
	}
}

func TestScanMembersRejects(t *testing.T) {
	good := mustLines(t)[3]
	cases := map[string][]byte{
		"empty":         nil,
		"no brace":      good[1:],
		"cut hash":      good[:len(good)-3],
		"space":         bytes.Replace(good, []byte(`,"hash":"`), []byte(`, "hash":"`), 1),
		"leading zero":  bytes.Replace(good, []byte(`"seq":4,`), []byte(`"seq":04,`), 1),
		"bad node byte": bytes.Replace(good, []byte(`"node_id":"node-a"`), []byte(`"node_id":"node a"`), 1),
		"no seq":        bytes.Replace(good, []byte(`"seq":4,`), []byte(`"sex":4,`), 1),
	}
	for name, line := range cases {
		if _, err := ScanMembers(line); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
}

func TestParseKinds(t *testing.T) {
	lines := mustLines(t)
	kinds := map[string]int{}
	for _, line := range lines {
		l, err := Parse(line)
		if err != nil {
			t.Fatal(err)
		}
		if l.At.IsZero() {
			t.Fatalf("seq %d: no time", l.Seq)
		}
		at, ok := Time(line)
		if !ok || !at.Equal(l.At) {
			t.Fatalf("seq %d: Time()=%v,%v, Parse says %v", l.Seq, at, ok, l.At)
		}
		if l.IsRecord() != IsRecord(line) {
			t.Fatalf("seq %d: IsRecord disagrees", l.Seq)
		}
		kinds[l.Type]++
		if l.IsLogin() {
			kinds["login"]++
		}
	}
	want := map[string]int{"vigil.segment": 1, "vigil.event": 2, "vigil.checkpoint": 3, "request": 8, "response": 6, "login": 4}
	for k, n := range want {
		if kinds[k] != n {
			t.Errorf("%s: %d lines, want %d (all: %v)", k, kinds[k], n, kinds)
		}
	}
}

func TestLoginUserAndOutcome(t *testing.T) {
	for _, tc := range []struct {
		path, body string
		login      bool
		user       string
		failed     bool
	}{
		{"auth/userpass/login/bob", `"error":"bad password",`, true, "bob", true},
		{"auth/approle/login", ``, true, "", false},
		{"auth/oidc/oidc/callback", `"error":"invalid client_nonce",`, true, "", true},
		{"auth/oidc/oidc/auth_url", ``, false, "", false},
		{"auth/token/create", ``, false, "", false},
		{"secret/data/login", ``, false, "", false},
	} {
		line := []byte(`{"time":"2026-01-01T00:00:00Z","type":"response","auth":{},"request":{"path":"` + tc.path + `"},` + tc.body +
			`"seq":9,"node_id":"n","prev_hash":"` + zeros + `","hash":"` + zeros + `"}`)
		l, err := Parse(line)
		if err != nil {
			t.Fatal(err)
		}
		if l.IsLogin() != tc.login || l.UserName() != tc.user || l.Failed() != tc.failed || l.Allowed() == tc.failed {
			t.Errorf("%s: login=%v user=%q failed=%v allowed=%v", tc.path, l.IsLogin(), l.UserName(), l.Failed(), l.Allowed())
		}
		if !l.At.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("time %v", l.At)
		}
	}
}

// TestActor pins the canonical actor rule on the fixture's entries and on
// a failed login without identity.
func TestActor(t *testing.T) {
	got := map[uint64][3]string{}
	for _, line := range mustLines(t) {
		l, err := Parse(line)
		if err != nil {
			t.Fatal(err)
		}
		got[l.Seq] = [3]string{l.Actor(), l.EntityName(), l.ActorEntityID()}
	}
	for seq, want := range map[uint64][3]string{
		4:  {"userpass-alice", "", "ent-1"}, // a token without identity: its display name
		7:  {"expiration", "", ""},          // internal: the subsystem
		9:  {"userpass-alice", "", ""},      // a login without identity: the issued token's display name
		19: {"carol", "carol", "ent-carol"}, // vigil.identity.actor
		20: {"carol", "carol", "ent-carol"}, // a login: the identity it resolved
		1:  {"", "", ""},                    // chain record
	} {
		if got[seq] != want {
			t.Errorf("seq %d: actor, entity name, entity id = %q, want %q", seq, got[seq], want)
		}
	}
	line := []byte(`{"time":"2026-01-01T00:00:00Z","type":"response","auth":{},"request":{"mount_point":"auth/corp-up/","path":"auth/corp-up/login/mallory"},"error":"x",` +
		`"seq":9,"node_id":"n","prev_hash":"` + zeros + `","hash":"` + zeros + `"}`)
	l, err := Parse(line)
	if err != nil {
		t.Fatal(err)
	}
	if a := l.Actor(); a != "corp-up/mallory" {
		t.Fatalf("failed login actor %q", a)
	}
	for _, c := range [][3]string{{"", "auth/userpass/login/bob", "userpass/bob"}, {"auth/a/b/", "auth/a/b/login/x", "a/b/x"},
		{"auth/approle/", "auth/approle/login", ""}, {"auth/up/", "auth/up/login/", ""}} {
		if got := LoginActor(c[0], c[1]); got != c[2] {
			t.Errorf("LoginActor(%q, %q) = %q, want %q", c[0], c[1], got, c[2])
		}
	}
}

const zeros = "0000000000000000000000000000000000000000000000000000000000000000"

// FuzzScanMembers: never panics, and whatever it accepts decodes to the
// same members with encoding/json when the line is valid JSON.
func FuzzScanMembers(f *testing.F) {
	for _, l := range mustLines(f) {
		f.Add(l)
	}
	f.Add([]byte(`{"seq":1,"node_id":"a","prev_hash":"` + zeros + `","hash":"` + zeros + `"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		m, err := ScanMembers(line)
		if err != nil {
			return
		}
		var j struct {
			Seq    uint64 `json:"seq"`
			NodeID string `json:"node_id"`
			Hash   string `json:"hash"`
		}
		if json.Unmarshal(line, &j) == nil && bytes.Count(line, []byte(`"hash":`)) == 1 && bytes.Count(line, []byte(`"seq":`)) == 1 && bytes.Count(line, []byte(`"node_id":`)) == 1 {
			if j.Seq != m.Seq || j.NodeID != m.NodeID || j.Hash != m.Hash {
				t.Fatalf("scan %+v json %+v", m, j)
			}
		}
	})
}
