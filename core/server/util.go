package server

import (
	"net/url"
	"strings"
)

func parseURLHost(s string) (string, error) {
	if !strings.Contains(s, "://") {
		return s, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", err
	}
	return u.Host, nil
}
