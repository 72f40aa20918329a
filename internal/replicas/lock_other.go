//go:build !unix

package replicas

// LockFile is the file in a data directory that its server holds locked.
const LockFile = "replica.lock"

// LockDataDir cannot lock on this platform: it returns a nil release and
// ErrNoLock, and leases of this host and data directory then lapse as any
// other does.
func LockDataDir(string) (release func(), err error) { return nil, ErrNoLock }
