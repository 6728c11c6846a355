package pool

// SetCores sets how many cores refillWait counts, for tests that must not
// depend on the machine's.
func SetCores(p *Pool, n int) {
	p.mu.Lock()
	p.cores = n
	p.mu.Unlock()
}
