package dhcpserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"

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
		s.byAddr[l.Addr] = &l
		if l.ClientID != "" {
			s.byID[l.ClientID] = &l
		}
	}
	return nil
}

// saveLocked writes the acknowledged leases atomically: a temporary file in
// the same directory, renamed over the lease file (mu held).
func (s *Server) saveLocked() error {
	if s.leaseFile == "" {
		return nil
	}
	f := leaseFile{Version: leaseFileVersion, Leases: []Lease{}}
	for _, l := range s.byAddr {
		if !l.Offered {
			f.Leases = append(f.Leases, *l)
		}
	}
	sort.Slice(f.Leases, func(i, j int) bool { return f.Leases[i].Addr.Less(f.Leases[j].Addr) })
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("dhcpserver: save leases %s: %w", s.leaseFile, err)
	}
	if err := atomicfile.WriteFile(s.leaseFile, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("dhcpserver: save leases: %w", err)
	}
	return nil
}
