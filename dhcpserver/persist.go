package dhcpserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"sync"

	"github.com/nsbox/nsbox/internal/atomicfile"
)

// leaseFileVersion is written in every lease file.
const leaseFileVersion = 1

type leaseFile struct {
	Version int     `json:"version"`
	Leases  []Lease `json:"leases"`
}

// load reads the lease file; a missing file is an empty table.
func (s *Server) load() error {
	b, err := os.ReadFile(s.leaseFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("dhcpserver: load leases %s: %w", s.leaseFile, err)
	}
	var f leaseFile
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("dhcpserver: load leases %s: %w", s.leaseFile, err)
	}
	if f.Version != leaseFileVersion {
		return fmt.Errorf("dhcpserver: load leases %s: version %d, want %d", s.leaseFile, f.Version, leaseFileVersion)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range f.Leases {
		l := f.Leases[i]
		if !s.inPool(l.Addr) || (l.ClientID == "" && !l.Declined) {
			s.logf("load leases %s: skip %s (%s): outside the pool", s.leaseFile, l.Addr, l.ClientID)
			continue
		}
		if _, ok := s.byAddr[l.Addr]; ok {
			continue
		}
		l.ClientID = normalID(l.ClientID)
		s.byAddr[l.Addr] = &l
		if l.ClientID != "" {
			s.byID[l.ClientID] = &l
		}
	}
	return nil
}

// persister serializes the writes of the lease file and lets one write
// cover every change made before it started (a group commit): under a burst
// of requests the file is written a few times instead of once per request,
// and each reply still waits until its change is on disk.
type persister struct {
	mu      sync.Mutex
	cond    sync.Cond // L is &mu; signalled when a write ends
	writing bool
	saved   uint64 // the table version the file holds
}

// persist returns once the lease file holds table version v or later,
// writing it unless another caller's write already covers v.
func (s *Server) persist(v uint64) error {
	if s.leaseFile == "" {
		return nil
	}
	d := &s.disk
	d.mu.Lock()
	defer d.mu.Unlock()
	for d.saved < v {
		if d.writing {
			d.cond.Wait()
			continue
		}
		d.writing = true
		d.mu.Unlock()
		cur, err := s.save()
		d.mu.Lock()
		d.writing = false
		d.cond.Broadcast()
		if err != nil {
			return err
		}
		d.saved = max(d.saved, cur)
	}
	return nil
}

// save writes the acknowledged leases atomically (a temporary file in the
// same directory, renamed over the lease file) and returns the table
// version written.
func (s *Server) save() (uint64, error) {
	f := leaseFile{Version: leaseFileVersion, Leases: []Lease{}}
	s.mu.Lock()
	v := s.version
	for _, l := range s.byAddr {
		if !l.Offered {
			f.Leases = append(f.Leases, *l)
		}
	}
	s.mu.Unlock()
	sort.Slice(f.Leases, func(i, j int) bool { return f.Leases[i].Addr.Less(f.Leases[j].Addr) })
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return 0, fmt.Errorf("dhcpserver: save leases %s: %w", s.leaseFile, err)
	}
	if err := atomicfile.WriteFile(s.leaseFile, append(b, '\n'), 0o644); err != nil {
		return 0, fmt.Errorf("dhcpserver: save leases: %w", err)
	}
	return v, nil
}
