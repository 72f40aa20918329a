package profiles_test

import (
	"testing"

	"github.com/cairn-cdp/cairn/internal/profiles"
	"github.com/cairn-cdp/cairn/internal/profiles/dynamostore/dynamotest"
)

func dynamoStore(t *testing.T) profiles.Store { return dynamotest.Store(t) }
