package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"os/exec"
	"runtime"
	"strconv"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
)

// openBrowser opens u in the user's browser. Tests replace it with a
// scripted browser.
var openBrowser = func(u string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", u)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", u)
	default:
		cmd = exec.Command("xdg-open", u)
	}
	return cmd.Start()
}

// oidcLoginTimeout bounds the wait for the provider to send the browser
// back.
var oidcLoginTimeout = 5 * time.Minute

// loginOIDC runs the OIDC authorization code flow as Vault's CLI does: it
// listens on listenaddress:port, asks the server for the provider's URL
// with redirect_uri http://callbackhost:callbackport/oidc/callback and a
// client nonce, opens (or prints) the URL, and when the provider sends the
// browser back, hands the code and state to the server's callback.
//
// Options (K=V): role, listenaddress (localhost), port (8250),
// callbackhost (localhost), callbackmethod (http), callbackport (= port),
// skip_browser (false).
func loginOIDC(client *vaultapi.Client, mount string, data map[string]any) (*vaultapi.Secret, int) {
	opt := func(k, def string) string {
		if v, ok := data[k].(string); ok && v != "" {
			return v
		}
		return def
	}
	port := opt("port", "8250")
	if _, err := strconv.Atoi(port); err != nil {
		return nil, usageError("port must be a number, got %q", port)
	}
	redirect := fmt.Sprintf("%s://%s/oidc/callback", opt("callbackmethod", "http"),
		net.JoinHostPort(opt("callbackhost", "localhost"), opt("callbackport", port)))
	skip, _ := strconv.ParseBool(opt("skip_browser", "false"))
	ln, err := net.Listen("tcp", net.JoinHostPort(opt("listenaddress", "localhost"), port))
	if err != nil {
		return nil, fail("listening for the OIDC callback: %v", err)
	}
	defer ln.Close()
	nb := make([]byte, 20)
	_, _ = rand.Read(nb)
	nonce := base64.RawURLEncoding.EncodeToString(nb)
	sec, err := client.Logical().Write("auth/"+mount+"/oidc/auth_url", map[string]any{
		"role": opt("role", ""), "redirect_uri": redirect, "client_nonce": nonce})
	if err != nil {
		return nil, apiError("authenticating", err)
	}
	authURL, _ := sec.Data["auth_url"].(string)
	if authURL == "" {
		return nil, fail("Unable to authorize role %q with redirect_uri %q. Check the server's logs for more information.", opt("role", ""), redirect)
	}

	type result struct {
		secret *vaultapi.Secret
		err    error
	}
	done := make(chan result, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("/oidc/callback", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if e := q.Get("error"); e != "" {
			err := fmt.Errorf("the provider refused the login: %s %s", e, q.Get("error_description"))
			writeOIDCPage(w, err)
			select {
			case done <- result{err: err}:
			default:
			}
			return
		}
		s, err := client.Logical().ReadWithData("auth/"+mount+"/oidc/callback", map[string][]string{
			"state": {q.Get("state")}, "code": {q.Get("code")}, "id_token": {q.Get("id_token")}, "client_nonce": {nonce}})
		if err == nil && (s == nil || s.Auth == nil) {
			err = errors.New("the server answered without a token")
		}
		writeOIDCPage(w, err)
		select {
		case done <- result{secret: s, err: err}:
		default:
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()

	fmt.Fprintf(stderr, "Complete the login via your OIDC provider. Launching browser to:\n\n    %s\n\n", authURL)
	if !skip {
		if err := openBrowser(authURL); err != nil {
			fmt.Fprintf(stderr, "Error attempting to automatically open browser: '%s'.\nPlease visit the authorization URL manually.\n", err)
		}
	}
	fmt.Fprintf(stderr, "Waiting for OIDC authentication to complete...\n")
	select {
	case r := <-done:
		if r.err != nil {
			return nil, apiError("authenticating", r.err)
		}
		return r.secret, 0
	case <-time.After(oidcLoginTimeout):
		return nil, fail("timed out after %s waiting for the OIDC provider to redirect back", oidcLoginTimeout)
	}
}

func writeOIDCPage(w http.ResponseWriter, err error) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, "<!doctype html><title>Vigil login failed</title><p>Login failed: %s</p>", html.EscapeString(err.Error()))
		return
	}
	fmt.Fprint(w, "<!doctype html><title>Vigil login</title><p>Signed in. You can close this window and return to the terminal.</p>")
}
