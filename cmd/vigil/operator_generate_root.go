package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"math/big"
	"strings"
)

func init() {
	register(&command{name: "operator generate-root", synopsis: "Generate a new root token from a threshold of key shares (OTP flow)", run: runOperatorGenerateRoot})
}

// genRootBody is sys/generate-root/*'s answer.
type genRootBody struct {
	Nonce            string `json:"nonce"`
	Started          bool   `json:"started"`
	Progress         int    `json:"progress"`
	Required         int    `json:"required"`
	Complete         bool   `json:"complete"`
	EncodedToken     string `json:"encoded_token"`
	EncodedRootToken string `json:"encoded_root_token"`
	OTP              string `json:"otp"`
	OTPLength        int    `json:"otp_length"`
	ShareID          bool   `json:"share_identified"`
	ShareNumber      int    `json:"share_number"`
	ShareHolder      string `json:"share_holder"`
}

const otpAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// runOperatorGenerateRoot is `vigil operator generate-root`, Vault's OTP flow.
func runOperatorGenerateRoot(args []string) int {
	var cf clientFlags
	fs := newFlags("operator generate-root", &cf)
	setUsage(fs, "operator generate-root [options] [KEY]", `
Generates a new root token once a threshold of unseal keys (Shamir) or
recovery keys (auto seal) has been given. The token comes back encoded
with a one-time pad (OTP) that only the operator who started holds:

    $ vigil operator generate-root -init            # prints the OTP and nonce
    $ vigil operator generate-root -nonce=<nonce>   # once per key holder
    $ vigil operator generate-root -decode=<encoded token> -otp=<otp>

Each share given is audited with its number and holder, never its value.`)
	initF := fs.Bool("init", false, "start a root token generation")
	cancel := fs.Bool("cancel", false, "cancel the generation in progress")
	status := fs.Bool("status", false, "print the progress")
	genOTP := fs.Bool("generate-otp", false, "print a new one-time pad and exit")
	otp := fs.String("otp", "", "the one-time pad (with -init, or to -decode)")
	decode := fs.String("decode", "", "decode this encoded token with -otp")
	nonce := fs.String("nonce", "", "the generation's nonce")
	pos, code, ok := cf.parse(fs, args, 0, 1)
	if !ok {
		return code
	}
	switch {
	case *genOTP:
		p, err := randomOTP(28)
		if err != nil {
			return fail("%v", err)
		}
		fmt.Fprintln(stdout, p)
		return 0
	case *decode != "":
		if *otp == "" {
			return fail("-decode needs -otp")
		}
		tok, err := decodeRootToken(*decode, *otp)
		if err != nil {
			return fail("decoding: %v", err)
		}
		fmt.Fprintln(stdout, tok)
		return 0
	}
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	var res genRootBody
	switch {
	case *cancel:
		if err := rawJSONRequest(client, "DELETE", "/v1/sys/generate-root/attempt", nil, nil); err != nil {
			return apiError("canceling root token generation", err)
		}
		fmt.Fprintln(stdout, "Success! Root token generation canceled (if it was started)")
		return 0
	case *status:
		if err := rawJSONRequest(client, "GET", "/v1/sys/generate-root/attempt", nil, &res); err != nil {
			return apiError("getting root token generation status", err)
		}
	case *initF:
		body := map[string]any{}
		if *otp != "" {
			body["otp"] = *otp
		}
		if err := rawJSONRequest(client, "PUT", "/v1/sys/generate-root/attempt", body, &res); err != nil {
			return apiError("initializing root token generation", err)
		}
	default:
		key := ""
		if len(pos) == 1 && pos[0] != "-" {
			key = pos[0]
		} else if key, err = readSecretInput("Unseal Key (will be hidden): "); err != nil {
			return fail("reading key: %v", err)
		}
		n := *nonce
		if n == "" {
			var st genRootBody
			if err := rawJSONRequest(client, "GET", "/v1/sys/generate-root/attempt", nil, &st); err != nil {
				return apiError("getting root token generation status", err)
			}
			n = st.Nonce
		}
		if err := rawJSONRequest(client, "PUT", "/v1/sys/generate-root/update", map[string]any{"key": strings.TrimSpace(key), "nonce": n}, &res); err != nil {
			return apiError("posting unseal key", err)
		}
	}
	if !cf.isTable() {
		return printJSON(res)
	}
	rows := []kvRow{{"Nonce", res.Nonce}, {"Started", fmt.Sprint(res.Started)}, {"Progress", fmt.Sprintf("%d/%d", res.Progress, res.Required)},
		{"Complete", fmt.Sprint(res.Complete)}}
	if res.OTP != "" {
		rows = append(rows, kvRow{"OTP", res.OTP}, kvRow{"OTP Length", fmt.Sprint(res.OTPLength)})
	}
	if res.ShareNumber > 0 || res.ShareID {
		rows = append(rows, kvRow{"Share Given", describeShare(res.ShareID, res.ShareNumber, res.ShareHolder)})
	}
	if res.EncodedToken != "" {
		rows = append(rows, kvRow{"Encoded Token", res.EncodedToken})
	}
	writeKVTable(stdout, rows)
	return 0
}

func randomOTP(n int) (string, error) {
	b := make([]byte, n)
	max := big.NewInt(int64(len(otpAlphabet)))
	for i := range b {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", err
		}
		b[i] = otpAlphabet[v.Int64()]
	}
	return string(b), nil
}

// decodeRootToken reverses the server's encoding: base64 (unpadded), XOR
// with the OTP.
func decodeRootToken(encoded, otp string) (string, error) {
	raw, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(encoded, "="))
	if err != nil {
		return "", err
	}
	if len(raw) != len(otp) {
		return "", fmt.Errorf("the OTP is %d characters but the encoded token is %d bytes", len(otp), len(raw))
	}
	out := make([]byte, len(raw))
	for i := range raw {
		out[i] = raw[i] ^ otp[i]
	}
	return string(out), nil
}
