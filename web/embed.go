// Package web holds the ISV admin portal: a TypeScript single-page app
// (src/, built by Vite into dist/) whose built assets are committed and
// embedded in the server binary, so `go run ./cmd/server` serves the portal
// with no Node step. `make web-check` rebuilds dist/ from the sources and
// fails if the committed build differs.
package web

import (
	"embed"
	"io/fs"
)

//go:embed dist
var dist embed.FS

// Dist returns the built portal: index.html at its root, hashed assets
// under assets/.
func Dist() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // the embed pattern guarantees dist exists
	}
	return sub
}
