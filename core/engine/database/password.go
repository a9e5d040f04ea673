package database

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"strings"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

const (
	alphanumeric = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	// passwordCharset and passwordLength follow Vault's default password
	// policy: 20 characters of letters, digits and "-", with at least one
	// lower-case letter, upper-case letter, digit and "-". None of them needs
	// escaping in a URL, a DSN or a quoted SQL literal.
	passwordCharset = alphanumeric + "-"
	passwordLength  = 20
)

// randomString returns n characters drawn uniformly from charset with
// crypto/rand.
func randomString(n int, charset string) (string, error) {
	runes := []rune(charset)
	max := big.NewInt(int64(len(runes)))
	var b strings.Builder
	b.Grow(n)
	for range n {
		i, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", fmt.Errorf("random: %w", err)
		}
		b.WriteRune(runes[i.Int64()])
	}
	return b.String(), nil
}

// defaultPassword generates a password under Vault's default policy, drawing
// again until every character class is present (rejection sampling keeps
// the distribution uniform over acceptable passwords).
func defaultPassword() (string, error) {
	for range 1000 {
		pw, err := randomString(passwordLength, passwordCharset)
		if err != nil {
			return "", err
		}
		if meetsDefaultPolicy(pw) {
			return pw, nil
		}
	}
	return "", fmt.Errorf("password generation did not converge")
}

func meetsDefaultPolicy(pw string) bool {
	return len(pw) == passwordLength &&
		strings.ContainsAny(pw, "abcdefghijklmnopqrstuvwxyz") &&
		strings.ContainsAny(pw, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") &&
		strings.ContainsAny(pw, "0123456789") &&
		strings.Contains(pw, "-") &&
		strings.Trim(pw, passwordCharset) == ""
}

// PasswordPolicies is implemented by a SystemView that can generate
// passwords from named policies (Vault's sys/policies/password). The
// engine finds it by type assertion; without it, password_policy cannot be
// configured.
type PasswordPolicies interface {
	GeneratePasswordFromPolicy(ctx context.Context, policyName string) (string, error)
}

// passwordPolicies returns sys's policy generator, if it has one.
func passwordPolicies(sys framework.SystemView) (PasswordPolicies, bool) {
	pp, ok := sys.(PasswordPolicies)
	return pp, ok
}

// newPassword generates a password with the named policy, or the default
// policy when policy is empty, and checks it is safe for statements.
func newPassword(ctx context.Context, sys framework.SystemView, policy string) (string, error) {
	if policy == "" {
		return defaultPassword()
	}
	pp, ok := passwordPolicies(sys)
	if !ok {
		return "", core.Invalid("password_policy %q cannot be used: this server has no password policies", policy)
	}
	pw, err := pp.GeneratePasswordFromPolicy(ctx, policy)
	if err != nil {
		return "", fmt.Errorf("password policy %q: %w", policy, err)
	}
	if err := checkPasswordChars(pw); err != nil {
		return "", err
	}
	return pw, nil
}
