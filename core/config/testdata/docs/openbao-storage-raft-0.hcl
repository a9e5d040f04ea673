# From the OpenBao documentation, docs/configuration/storage/raft (MPL-2.0), example 1.
storage "raft" {
  path = "/path/to/raft/data"
  node_id = "raft_node_1"
}
cluster_addr = "http://127.0.0.1:8201"
