package killtest

import (
	"testing"

	"github.com/dropgate/dropgate/store/storetest"
)

// TestMain runs the package's tests on SQLite, then on PostgreSQL when
// DROPGATE_TEST_POSTGRES names a test database (see storetest.Main).
func TestMain(m *testing.M) { storetest.Main(m) }
