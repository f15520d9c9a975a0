package worker

// SetBeforeWrite installs the test hook that runs before each batch's lease check.
func SetBeforeWrite(w *Worker, f func()) { w.beforeWrite = f }
