package core

// SealShares describes how the unseal key is split: what compliance
// checks read of the seal configuration. KeyHolders is the number of
// distinct share holders (0: unknown, assume one per share).
type SealShares struct {
	Type            string
	SecretShares    int
	SecretThreshold int
	KeyHolders      int
}
