// Package api holds Cairn's OpenAPI contract, api/openapi.yaml, the single
// source of truth for the REST API. The server (internal/httpapi) and the Go
// client SDK (package client) are generated from it by `go generate ./...`;
// the server also validates every request against it at run time.
package api

import _ "embed"

// Spec is the OpenAPI document, embedded in the binary.
//
//go:embed openapi.yaml
var Spec []byte

//go:generate go tool oapi-codegen -config server.cfg.yaml openapi.yaml
//go:generate go tool oapi-codegen -config client.cfg.yaml openapi.yaml
