// Package traffic generates a known, realistic access pattern against a
// Vigil server through the Vault API client: clinicians reading PHI,
// an application reading its own secrets and being denied PHI, an intruder
// guessing a password, a night-time break-glass read, and root changing a
// policy and an audit device. The demo (make demo-report) and the reports
// end-to-end test use it; the test asserts the exact counts it documents.
package traffic

import (
	"fmt"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/rego"
)

// Server is what the generator needs: a root client, a way to make more
// clients, and the server's clock (every request is stamped with it).
type Server struct {
	Root      *vaultapi.Client
	NewClient func(token string) *vaultapi.Client
	SetClock  func(time.Time)
	// AuditDir is where the second audit device (enabled by root on day 1)
	// writes.
	AuditDir string
}

// Setup prepares mounts, secrets, policies, users and the break-glass
// module at `at` (before the period the reports cover).
func Setup(s Server, at time.Time) error {
	s.SetClock(at)
	c := s.Root
	steps := []func() error{
		func() error {
			return c.Sys().Mount("phi", &vaultapi.MountInput{Type: "kv", Description: "patient records",
				Options: map[string]string{"version": "2", "phi": "true"}})
		},
		func() error {
			return c.Sys().EnableAuthWithOptions("userpass", &vaultapi.EnableAuthOptions{Type: "userpass"})
		},
		func() error {
			_, err := c.Logical().Write("sys/policies/acl/clinical", map[string]any{"policy": `path "phi/data/patients/*" { capabilities = ["read"] }`})
			return err
		},
		func() error {
			_, err := c.Logical().Write("sys/policies/acl/app", map[string]any{"policy": `path "secret/data/app/*" { capabilities = ["read"] }`})
			return err
		},
		func() error {
			_, err := c.Logical().Write("sys/policies/rego/break_glass", map[string]any{"policy": rego.Examples()["break_glass"], "enforcement_level": "mandatory"})
			return err
		},
	}
	for u, pol := range map[string]string{"alice": "clinical", "bob": "clinical", "carol": "app", "mallory": "app"} {
		u, pol := u, pol
		steps = append(steps, func() error {
			_, err := c.Logical().Write("auth/userpass/users/"+u, map[string]any{"password": u + "-pw-2025", "token_policies": pol})
			return err
		})
	}
	for i := 1; i <= 5; i++ {
		i := i
		steps = append(steps, func() error {
			_, err := c.Logical().Write(fmt.Sprintf("phi/data/patients/p%d", i), map[string]any{"data": map[string]any{"name": fmt.Sprintf("patient %d", i), "mrn": 100000 + i}})
			return err
		})
	}
	steps = append(steps, func() error {
		_, err := c.Logical().Write("secret/data/app/db", map[string]any{"data": map[string]any{"password": "s3cr3t"}})
		return err
	})
	for _, st := range steps {
		if err := st(); err != nil {
			return fmt.Errorf("traffic: setup: %w", err)
		}
	}
	return nil
}

// login logs user in at t and returns a client with the new token.
func login(s Server, user, password string, t time.Time) (*vaultapi.Client, error) {
	s.SetClock(t)
	anon := s.NewClient("")
	sec, err := anon.Logical().Write("auth/userpass/login/"+user, map[string]any{"password": password})
	if err != nil {
		return nil, err
	}
	return s.NewClient(sec.Auth.ClientToken), nil
}

// Day generates one day of traffic starting at day (midnight UTC); n is
// the day's index in the period (day 0 has the password guessing, day 1
// the break-glass and root's changes). Per day:
//
//	09:00 alice logs in, reads patients/p1 and p2
//	10:00 bob logs in, reads p1
//	11:00 alice logs in, reads p3
//	14:00 carol logs in, reads secret/data/app/db, is denied phi p1
//	20:00 bob logs in, reads p4 (off-hours)
//
// day 0 also: 03:00 mallory fails three logins.
// day 1 also: 01:55 root creates a break-glass token "oncall"; 02:00 it
// reads p5 twice with X-Vigil-Reason and once without (denied); 12:00 root
// updates policy clinical, reads p1 and enables audit device file2.
func Day(s Server, day time.Time, n int) error {
	at := func(h, m int) time.Time { return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute) }
	read := func(c *vaultapi.Client, t time.Time, p string) error {
		s.SetClock(t)
		_, err := c.Logical().Read(p)
		return err
	}
	sessions := []struct {
		user  string
		h     int
		paths []string
	}{
		{"alice", 9, []string{"phi/data/patients/p1", "phi/data/patients/p2"}},
		{"bob", 10, []string{"phi/data/patients/p1"}},
		{"alice", 11, []string{"phi/data/patients/p3"}},
		{"carol", 14, []string{"secret/data/app/db"}},
		{"bob", 20, []string{"phi/data/patients/p4"}},
	}
	if n == 0 {
		for i := 0; i < 3; i++ {
			if _, err := login(s, "mallory", fmt.Sprintf("guess-%d", i), at(3, i)); err == nil {
				return fmt.Errorf("traffic: a wrong password logged in")
			}
		}
	}
	if n == 1 {
		s.SetClock(at(1, 55))
		tok, err := s.Root.Auth().Token().Create(&vaultapi.TokenCreateRequest{DisplayName: "oncall", Policies: []string{"default"},
			Metadata: map[string]string{"break_glass": "true"}, TTL: "1h"})
		if err != nil {
			return fmt.Errorf("traffic: break-glass token: %w", err)
		}
		bg := s.NewClient(tok.Auth.ClientToken)
		bg.AddHeader("X-Vigil-Reason", "ER patient unconscious, EHR down")
		bg.AddHeader("X-Vigil-Ticket", "INC-4242")
		for i := 0; i < 2; i++ {
			if err := read(bg, at(2, i), "phi/data/patients/p5"); err != nil {
				return fmt.Errorf("traffic: break-glass read: %w", err)
			}
		}
		noReason := s.NewClient(tok.Auth.ClientToken)
		if err := read(noReason, at(2, 5), "phi/data/patients/p5"); err == nil {
			return fmt.Errorf("traffic: break-glass without a reason was allowed")
		}
	}
	for _, se := range sessions {
		c, err := login(s, se.user, se.user+"-pw-2025", at(se.h, 0))
		if err != nil {
			return fmt.Errorf("traffic: login %s: %w", se.user, err)
		}
		for i, p := range se.paths {
			if err := read(c, at(se.h, 1+i), p); err != nil {
				return fmt.Errorf("traffic: %s reads %s: %w", se.user, p, err)
			}
		}
		if se.user == "carol" {
			if err := read(c, at(se.h, 5), "phi/data/patients/p1"); err == nil {
				return fmt.Errorf("traffic: carol could read PHI")
			}
		}
	}
	if n == 1 {
		s.SetClock(at(12, 0))
		if _, err := s.Root.Logical().Write("sys/policies/acl/clinical", map[string]any{"policy": `path "phi/data/patients/*" { capabilities = ["read", "list"] }`}); err != nil {
			return err
		}
		if err := read(s.Root, at(12, 1), "phi/data/patients/p1"); err != nil {
			return err
		}
		s.SetClock(at(12, 2))
		if err := s.Root.Sys().EnableAuditWithOptions("file2", &vaultapi.EnableAuditOptions{Type: "file",
			Options: map[string]string{"file_path": s.AuditDir + "/audit2.log"}}); err != nil {
			return fmt.Errorf("traffic: enable file2: %w", err)
		}
	}
	return nil
}
