package core

// HealthInfo is extra state reported by sys/health. The server fills the
// cluster facts; subsystems (audit, streams) add theirs.
type HealthInfo struct {
	Standby     bool
	ClusterName string
	ClusterID   string
	// Audit describes audit pipeline health ("ok", "degraded", "critical").
	AuditStatus string
	AuditDetail map[string]any
}
