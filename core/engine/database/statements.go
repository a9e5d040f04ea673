package database

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// execer runs one statement; *sql.DB and *sql.Tx implement it.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// splitStatements turns a role's statement list into single queries, as
// Vault does: each element is split on ";" unless it contains a
// dollar-quoted block ("$$", a PostgreSQL function body), which is run as
// is. Splitting happens on the template, before substitution, so a ";" in a
// substituted value cannot split a statement. Empty queries are dropped.
func splitStatements(stmts []string) []string {
	var out []string
	for _, stmt := range stmts {
		if strings.Contains(stmt, "$$") {
			if q := strings.TrimSpace(stmt); q != "" {
				out = append(out, q)
			}
			continue
		}
		for _, q := range strings.Split(stmt, ";") {
			if q = strings.TrimSpace(q); q != "" {
				out = append(out, q)
			}
		}
	}
	return out
}

// substitute replaces each {{key}} in tpl with vars[key], without escaping
// (Vault's dbutil.QueryHelper). Callers make sure values are safe to place
// inside the quotes a statement puts around them (see checkIdentifier and
// checkPasswordChars). Unknown placeholders are left as they are.
func substitute(tpl string, vars map[string]string) string {
	for k, v := range vars {
		tpl = strings.ReplaceAll(tpl, "{{"+k+"}}", v)
	}
	return tpl
}

// userVars returns the placeholder values for statements about one user.
// {{name}} and {{username}} are synonyms, as in Vault.
func userVars(name, password, expiration string) map[string]string {
	m := map[string]string{"name": name, "username": name}
	if password != "" {
		m["password"] = password
	}
	if expiration != "" {
		m["expiration"] = expiration
	}
	return m
}

// runStatements executes stmts (split by splitStatements) with vars
// substituted, stopping at the first failure. The error names the 1-based
// position of the failing query but never its text, which may hold a
// password.
func runStatements(ctx context.Context, ex execer, stmts []string, vars map[string]string) error {
	queries := splitStatements(stmts)
	for i, q := range queries {
		if _, err := ex.ExecContext(ctx, substitute(q, vars)); err != nil {
			return fmt.Errorf("statement %d of %d: %w", i+1, len(queries), err)
		}
	}
	return nil
}

// inTx runs f in a transaction and commits it; on any error the transaction
// is rolled back. On PostgreSQL this makes user creation all-or-nothing; on
// MySQL, where DDL commits implicitly, callers clean up themselves.
func inTx(ctx context.Context, db *sql.DB, f func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// hasStatements reports whether stmts holds at least one non-blank query.
func hasStatements(stmts []string) bool { return len(splitStatements(stmts)) > 0 }
