package core

// SealTypeShamir is the seal type of a server unsealed with Shamir key
// shares; any other type is an auto seal, whose held shares are recovery
// shares.
const SealTypeShamir = "shamir"

// SealShares describes how the unseal (or, with an auto seal, recovery)
// key is split: what compliance checks read of the seal configuration.
// KeyHolders is the number of distinct share holders (0: unknown, assume
// one per held share); Holders labels the held shares when they were
// given at init or rekey.
type SealShares struct {
	Type              string
	SecretShares      int
	SecretThreshold   int
	RecoveryShares    int
	RecoveryThreshold int
	KeyHolders        int
	Holders           []string
}

// Recovery reports whether the held shares are recovery shares (an auto
// seal).
func (c *SealShares) Recovery() bool { return c.Type != "" && c.Type != SealTypeShamir }

// Held returns the number of held shares and their threshold: unseal
// shares for Shamir, recovery shares for an auto seal.
func (c *SealShares) Held() (shares, threshold int) {
	if c.Recovery() {
		return c.RecoveryShares, c.RecoveryThreshold
	}
	return c.SecretShares, c.SecretThreshold
}
