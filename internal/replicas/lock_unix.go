//go:build unix

package replicas

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// LockFile is the file in a data directory that its server holds locked.
const LockFile = "replica.lock"

// LockDataDir takes an exclusive lock on dir's LockFile (created mode
// 0600), which the kernel releases when the process ends however it ends.
// Holding it proves that no other live process on this host serves from
// dir, so a lease naming this host and dir is a dead process's
// (Config.DataDirLocked). ErrDataDirBusy says another process holds it.
func LockDataDir(dir string) (release func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, LockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("replicas: lock data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: another server is running on the data directory %s (it holds %s)", ErrDataDirBusy, dir, LockFile)
		}
		return nil, fmt.Errorf("replicas: lock data directory: %w", err)
	}
	return func() { f.Close() }, nil
}
