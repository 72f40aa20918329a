package provisioner_test

import (
	"testing"

	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/internal/provisioner/enginetest"
)

func TestLocalEngineContract(t *testing.T) {
	enginetest.Run(t, &provisioner.LocalEngine{Root: t.TempDir()}, "eu-west-1")
}
