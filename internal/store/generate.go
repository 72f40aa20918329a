package store

// sqlc runs from the separate tools module so its dependencies stay out of
// Cairn's go.mod. go generate runs this in internal/store, hence the paths.
//go:generate go tool -modfile=../../tools/go.mod sqlc generate -f ../../sqlc.yaml
