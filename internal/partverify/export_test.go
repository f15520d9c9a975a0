package partverify

// SetAfterCheckpoint installs the test hook that runs after each checkpoint.
func SetAfterCheckpoint(v *Verifier, f func(Progress)) { v.afterCheckpoint = f }
