package config

// The keys Vault and OpenBao document that Vigil accepts without acting on
// them. A configuration written for either starts with one warning per such
// key, naming it and why it changes nothing here. Keys whose absence of
// effect would weaken security are not here: they are refused (see
// refusedTrue) or implemented. A key in neither list nor implemented is an
// error, so a typo never passes silently.
//
// Implementing a key means moving it out of these tables.

// ignoredTop are top-level keys and blocks.
var ignoredTop = map[string]string{
	"ha_storage":                          "integrated raft storage is already highly available",
	"service_registration":                "no service registry integration",
	"cache_size":                          "storage reads are served by raft's local state",
	"disable_cache":                       "storage reads are served by raft's local state",
	"plugin_directory":                    "external plugins are not supported; engines are built in",
	"plugin_tmpdir":                       "external plugins are not supported",
	"plugin_file_uid":                     "external plugins are not supported",
	"plugin_file_permissions":             "external plugins are not supported",
	"plugin":                              "external plugins are not supported",
	"plugin_auto_download":                "external plugins are not supported",
	"plugin_auto_register":                "external plugins are not supported",
	"plugin_download_behavior":            "external plugins are not supported",
	"plugin_download_max_size":            "external plugins are not supported",
	"detect_deadlocks":                    "no deadlock detector",
	"raw_storage_endpoint":                "sys/raw is not served (storage is reachable only through the audited engines)",
	"introspection_endpoint":              "sys/inflight-req and introspection are not served",
	"enable_response_header_hostname":     "responses carry no X-Vault-Hostname header",
	"enable_response_header_raft_node_id": "responses carry no X-Vault-Raft-Node-ID header",
	"log_requests_level":                  "requests are recorded by the audit log, not the server log",
	"imprecise_lease_role_tracking":       "lease counts are exact",
	"disable_standby_reads":               "standby nodes do not serve reads",
	"allow_unauthenticated_workflows":     "workflows are not supported",
	"disable_clustering":                  "clustering follows the storage configuration",
	"cluster_cipher_suites":               "the cluster port's cipher suites are fixed (TLS 1.3)",
	"disable_sealwrap":                    "seal wrapping is not supported",
	"disable_performance_standby":         "performance standbys are not supported",
	"disable_printable_check":             "not applicable",
	"disable_indexing":                    "not applicable",
	"disable_sentinel_trace":              "Sentinel is not supported",
	"license_path":                        "no license is needed",
	"experiments":                         "no experiments are available",
	"administrative_namespace_path":       "no namespace is administrative: the root namespace alone has the server's sys/ paths",
	"enable_post_unseal_trace":            "no post-unseal trace",
	"post_unseal_trace_directory":         "no post-unseal trace",
	"unsafe_cross_namespace_identity":     "identity stays inside each namespace",
	"unsafe_relative_paths":               "not applicable",
	"initialize":                          "self-initialisation is not supported; initialise with vigil operator init",
	"entropy":                             "external entropy sources are not supported",
	"sentinel":                            "Sentinel is not supported",
	"replication":                         "replication is not supported",
	"reporting":                           "usage reporting is not supported",
	"allow_audit_log_prefixing":           "the prefix option of audit devices is always allowed",
}

// ignoredListener are keys of listener "tcp" blocks.
var ignoredListener = map[string]string{
	"max_request_duration":                           "requests are bounded by the server-wide default_max_request_duration (default 90s), not per listener",
	"max_request_json_memory":                        "JSON bodies are limited by max_request_size only",
	"max_request_json_strings":                       "JSON bodies are limited by max_request_size only",
	"proxy_protocol_behavior":                        "the PROXY protocol is not supported; connect clients directly",
	"proxy_protocol_authorized_addrs":                "the PROXY protocol is not supported",
	"tls_auto_reload":                                "certificates are read at start",
	"tls_auto_reload_interval":                       "certificates are read at start",
	"tls_key_exchange_preferences":                   "Go's default key exchange preferences are used",
	"tls_prefer_server_cipher_suites":                "deprecated; Go orders cipher suites itself",
	"tls_acme_ca_directory":                          "ACME certificates are not supported; set tls_cert_file and tls_key_file",
	"tls_acme_test_ca_directory":                     "ACME certificates are not supported",
	"tls_acme_cache_path":                            "ACME certificates are not supported",
	"tls_acme_ca_root":                               "ACME certificates are not supported",
	"tls_acme_eab_key_id":                            "ACME certificates are not supported",
	"tls_acme_eab_mac_key":                           "ACME certificates are not supported",
	"tls_acme_email":                                 "ACME certificates are not supported",
	"tls_acme_domains":                               "ACME certificates are not supported",
	"tls_acme_key_type":                              "ACME certificates are not supported",
	"tls_acme_disable_http_challenge":                "ACME certificates are not supported",
	"tls_acme_disable_alpn_challenge":                "ACME certificates are not supported",
	"profiling":                                      "pprof is not served on the API listener",
	"inflight_requests_logging":                      "sys/in-flight-req is not served",
	"custom_response_headers":                        "custom response headers are not supported",
	"cors_enabled":                                   "CORS is configured through sys/config/cors, not per listener",
	"cors_allowed_origins":                           "CORS is configured through sys/config/cors, not per listener",
	"disable_replication_status_endpoints":           "replication is not supported",
	"disable_request_limiter":                        "no adaptive request limiter",
	"chroot_namespace":                               "a listener serves every namespace; name one with X-Vault-Namespace",
	"agent_api":                                      "agent-only setting",
	"proxy_api":                                      "agent-only setting",
	"role":                                           "listener roles are not supported",
	"purpose":                                        "listener purposes are not supported",
	"enable_quit":                                    "agent-only setting",
	"x_forwarded_for_hop_skips":                      "X-Forwarded-For is not read",
	"x_forwarded_for_reject_not_authorized":          "X-Forwarded-For is not read",
	"x_forwarded_for_reject_not_present":             "X-Forwarded-For is not read",
	"x_forwarded_for_client_cert_header":             "X-Forwarded-For is not read",
	"x_forwarded_for_client_cert_header_decoders":    "X-Forwarded-For is not read",
	"x_forwarded_for_client_cert_decoders":           "X-Forwarded-For is not read",
	"x_forwarded_for_client_cert_keep_not_forwarded": "X-Forwarded-For is not read",
	"x_forwarded_for_client_cert_keep_unauthorized":  "X-Forwarded-For is not read",
	"socket_mode":                                    "unix sockets are not supported",
	"socket_user":                                    "unix sockets are not supported",
	"socket_group":                                   "unix sockets are not supported",
}

// refusedTrue are listener keys that are refused when set to a true value
// (or, for lists, any value): ignoring them would leave the server less
// protected than its operator asked for.
var refusedTrue = map[string]string{
	"require_request_header":                   "requests without the X-Vault-Request header would be served",
	"redact_addresses":                         "sys/health, sys/leader and sys/seal-status would still show node addresses",
	"redact_cluster_name":                      "sys/health and sys/seal-status would still show the cluster name",
	"redact_version":                           "sys/health and sys/seal-status would still show the version",
	"x_forwarded_for_authorized_addrs":         "client addresses would be the proxy's, so CIDR-bound tokens and the audit trail would see the proxy instead of the client",
	"disable_unauthed_rekey_endpoints":         "sys/rekey would still accept key shares without a token on this listener",
	"disable_unauthed_generate_root_endpoints": "sys/generate-root would still accept key shares without a token on this listener",
}

// implementedTrivially are listener keys whose documented effect is already
// Vigil's behaviour.
var implementedTrivially = map[string]bool{}

// ignoredRaft are keys of storage "raft" blocks.
var ignoredRaft = map[string]string{
	"max_transaction_size":                     "transactions are bounded by max_request_size",
	"max_batch_entries":                        "not applicable",
	"max_batch_size":                           "not applicable",
	"autopilot_upgrade_version":                "autopilot's automated upgrades (Vault Enterprise) are not supported",
	"autopilot_redundancy_zone":                "autopilot's redundancy zones (Vault Enterprise) are not supported",
	"raft_wal":                                 "the log store is raft-boltdb",
	"raft_log_verifier_enabled":                "the log store is raft-boltdb",
	"raft_log_verification_interval":           "the log store is raft-boltdb",
	"max_mount_and_namespace_table_entry_size": "not applicable",
	"apply_delay":                              "test-only setting",
	"snapshot_delay":                           "test-only setting",
	"kv_max_value_size":                        "not applicable",
}

// telemetryKeys are the documented telemetry keys. Vigil serves every
// metric at sys/metrics (Prometheus or JSON); the sinks that push metrics
// elsewhere are not implemented.
var telemetryImplemented = map[string]bool{
	"prometheus_retention_time": true, // Prometheus metrics are always served
	"disable_hostname":          true, // metric names never carry the host name
	// Vigil extension: serve sys/metrics without a token.
	"unauthenticated_metrics_access": true,
}

var ignoredTelemetry = map[string]string{
	"usage_gauge_period":                     "gauges are computed when scraped",
	"maximum_gauge_cardinality":              "gauges are computed when scraped",
	"enable_hostname_label":                  "metrics carry no host name label",
	"metrics_prefix":                         "metric names are fixed",
	"lease_metrics_epsilon":                  "no lease expiry histogram",
	"num_lease_metrics_buckets":              "no lease expiry histogram",
	"add_lease_metrics_namespace_labels":     "lease metrics carry no namespace label",
	"add_mount_point_rollup_labels":          "not applicable",
	"filter_default":                         "metrics are not filtered",
	"prefix_filter":                          "metrics are not filtered",
	"statsite_address":                       "metrics are served at sys/metrics, not pushed to statsite",
	"statsd_address":                         "metrics are served at sys/metrics, not pushed to statsd",
	"dogstatsd_addr":                         "metrics are served at sys/metrics, not pushed to DogStatsD",
	"dogstatsd_tags":                         "metrics are served at sys/metrics, not pushed to DogStatsD",
	"circonus_api_token":                     "metrics are not pushed to Circonus",
	"circonus_api_app":                       "metrics are not pushed to Circonus",
	"circonus_api_url":                       "metrics are not pushed to Circonus",
	"circonus_submission_interval":           "metrics are not pushed to Circonus",
	"circonus_submission_url":                "metrics are not pushed to Circonus",
	"circonus_check_id":                      "metrics are not pushed to Circonus",
	"circonus_check_force_metric_activation": "metrics are not pushed to Circonus",
	"circonus_check_instance_id":             "metrics are not pushed to Circonus",
	"circonus_check_search_tag":              "metrics are not pushed to Circonus",
	"circonus_check_display_name":            "metrics are not pushed to Circonus",
	"circonus_check_tags":                    "metrics are not pushed to Circonus",
	"circonus_broker_id":                     "metrics are not pushed to Circonus",
	"circonus_broker_select_tag":             "metrics are not pushed to Circonus",
	"stackdriver_project_id":                 "metrics are not pushed to Stackdriver",
	"stackdriver_location":                   "metrics are not pushed to Stackdriver",
	"stackdriver_namespace":                  "metrics are not pushed to Stackdriver",
	"stackdriver_debug_logs":                 "metrics are not pushed to Stackdriver",
}

// ignoredAuditOptions are documented file audit device options that Vigil
// does not implement; leaving them out records more, never less.
var ignoredAuditOptions = map[string]string{
	"filter":   "audit filtering is not supported; every request is recorded",
	"exclude":  "audit exclusion is not supported; every field is recorded",
	"fallback": "every enabled device is required; there is no fallback device",
}
