package seal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/vigilsec/vigil/core/barrier"
	"github.com/vigilsec/vigil/core/storage"
)

// keyedSeal is an in-process auto seal for the Manager's unit tests: AES-GCM
// under a fixed key with a type of its own. The real seals run the same
// paths against their backends in sealtest and the process tests.
type keyedSeal struct {
	*ShamirSeal
	typ string
}

func (k keyedSeal) Type() string { return k.typ }

func newKeyed(tb testing.TB, typ string) keyedSeal {
	key := make([]byte, KeySize)
	rand.Read(key)
	s, err := NewShamir(key)
	if err != nil {
		tb.Fatal(err)
	}
	return keyedSeal{s, typ}
}

func hexAll(keys [][]byte) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = hex.EncodeToString(k)
	}
	return out
}

// migrateAll gives keys to Migrate and returns the last error.
func migrateAll(m *Manager, keys []string) error {
	var err error
	for _, k := range keys {
		if _, err = m.Migrate(context.Background(), k); err != nil {
			return err
		}
	}
	return nil
}

// TestMigrationResumes interrupts a Shamir → auto migration at every stage
// and resumes it by "restarting" (a new Manager over the same storage).
func TestMigrationResumes(t *testing.T) {
	ctx := context.Background()
	kms := newKeyed(t, "testkms")
	for _, stage := range []string{"recovered", "before-commit", "after-commit"} {
		t.Run(stage, func(t *testing.T) {
			mem, res := MustInit(t, 3, 2)
			keys := hexAll(res.Keys)
			b := barrier.New(mem)
			m := New(mem, b, WithNow(clock), WithAutoSeal(kms))
			st, _ := m.Status(ctx)
			if !st.Migration || st.Type != Type || st.RecoverySeal {
				t.Fatalf("pending status = %+v", st)
			}
			if _, err := m.Unseal(ctx, keys[0]); !errors.Is(err, ErrMigrationPending) {
				t.Fatalf("plain unseal: %v", err)
			}
			if err := m.AutoUnseal(ctx); !errors.Is(err, ErrMigrationPending) {
				t.Fatalf("auto-unseal: %v", err)
			}
			crash := errors.New("crash at " + stage)
			faultHook = func(s string) error {
				if s == stage {
					return crash
				}
				return nil
			}
			err := migrateAll(m, keys[:2])
			faultHook = nil
			if !errors.Is(err, crash) || !b.Sealed() {
				t.Fatalf("interrupted migration: %v, sealed %v", err, b.Sealed())
			}
			// Restart with the same configuration.
			b2 := barrier.New(mem)
			m2 := New(mem, b2, WithNow(clock), WithAutoSeal(kms))
			if stage == "after-commit" {
				if err := m2.AutoUnseal(ctx); err != nil || b2.Sealed() {
					t.Fatalf("after a committed migration the new seal unseals: %v", err)
				}
			} else if err := migrateAll(m2, keys[1:]); err != nil || b2.Sealed() {
				t.Fatalf("resumed migration: %v", err)
			}
			cfg, _ := m2.Config(ctx)
			if cfg.Type != "testkms" || cfg.RecoveryShares != 3 || cfg.RecoveryThreshold != 2 || cfg.SecretShares != 1 || cfg.MigratedAt.IsZero() {
				t.Fatalf("config after migration = %+v", cfg)
			}
		})
	}
}

// TestMigrationRoundTrip: Shamir → auto → another auto → Shamir with the
// same shares, and the guards on the way.
func TestMigrationRoundTrip(t *testing.T) {
	ctx := context.Background()
	mem, res := MustInit(t, 3, 2)
	keys := hexAll(res.Keys)
	a, c := newKeyed(t, "kms-a"), newKeyed(t, "kms-c")
	if err := migrateAll(New(mem, barrier.New(mem), WithAutoSeal(a)), keys[:2]); err != nil {
		t.Fatal(err)
	}
	// The stored seal is kms-a: configuring kms-c without kms-a disabled is refused.
	m := New(mem, barrier.New(mem), WithAutoSeal(c))
	if err := m.AutoUnseal(ctx); err == nil {
		t.Fatal("auto-unseal with an unknown stored seal succeeded")
	}
	if _, err := m.Migrate(ctx, keys[0]); err == nil {
		t.Fatal("migration without the old seal succeeded")
	}
	// kms-a → kms-c with the recovery keys (the old unseal keys).
	b := barrier.New(mem)
	m = New(mem, b, WithAutoSeal(c), WithDisabledSeal(a))
	if _, err := m.Migrate(ctx, keys[2]); err != nil {
		t.Fatal(err)
	}
	if err := migrateAll(m, keys[:1]); err != nil || b.Sealed() {
		t.Fatalf("kms-a → kms-c: %v", err)
	}
	// A wrong recovery key is refused.
	b = barrier.New(mem)
	m = New(mem, b, WithDisabledSeal(c))
	_, other := MustInit(t, 3, 2)
	if err := migrateAll(m, hexAll(other.Keys)[:2]); !errors.Is(err, ErrRecoveryKeyMismatch) || !b.Sealed() {
		t.Fatalf("foreign recovery keys: %v", err)
	}
	// kms-c → Shamir.
	if err := migrateAll(m, keys[1:]); err != nil || b.Sealed() {
		t.Fatalf("kms-c → Shamir: %v", err)
	}
	if v, _ := mem.Get(ctx, RecoveryCheckPath); v != nil {
		t.Fatal("the recovery check survived the migration to Shamir")
	}
	m = New(mem, barrier.New(mem))
	if _, err := m.Migrate(ctx, keys[0]); !errors.Is(err, ErrNoMigration) {
		t.Fatalf("migrate with nothing pending: %v", err)
	}
	mustUnseal(t, m, keys[0], keys[2])
}

// TestRekeyRecovery rekeys an auto seal's recovery key.
func TestRekeyRecovery(t *testing.T) {
	ctx := context.Background()
	mem := storage.NewMemory()
	b := barrier.New(mem)
	kms := newKeyed(t, "testkms")
	m := New(mem, b, WithAutoSeal(kms))
	if _, err := m.Init(ctx, InitParams{SecretShares: 5, SecretThreshold: 3}); err == nil {
		t.Fatal("auto seal init without recovery shares succeeded")
	}
	res, err := m.Init(ctx, InitParams{RecoveryShares: 3, RecoveryThreshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.RekeyInit(ctx, true, RekeyParams{SecretShares: 2, SecretThreshold: 2}); err == nil {
		t.Fatal("rekey while sealed succeeded")
	}
	if err := m.AutoUnseal(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.RekeyInit(ctx, false, RekeyParams{SecretShares: 2, SecretThreshold: 2}); err == nil {
		t.Fatal("rekey of the unseal key on an auto seal succeeded")
	}
	st, err := m.RekeyInit(ctx, true, RekeyParams{SecretShares: 4, SecretThreshold: 3, Holders: []string{"a", "b", "c", "d"}})
	if err != nil {
		t.Fatal(err)
	}
	keys := hexAll(res.RecoveryKeys)
	if _, r, err := m.RekeyUpdate(ctx, true, keys[0], st.Nonce); err != nil || r != nil {
		t.Fatalf("rekey step 1: %v", err)
	}
	_, r, err := m.RekeyUpdate(ctx, true, keys[1], st.Nonce)
	if err != nil || r == nil || len(r.Keys) != 4 || r.Config.RecoveryThreshold != 3 {
		t.Fatalf("rekey: %+v %v", r, err)
	}
	if err := m.VerifyHeldShares(ctx, r.Keys[:3]); err != nil {
		t.Fatalf("new recovery shares: %v", err)
	}
	if err := m.VerifyHeldShares(ctx, res.RecoveryKeys[:2]); !errors.Is(err, ErrRecoveryKeyMismatch) {
		t.Fatalf("old recovery shares: %v", err)
	}
}
