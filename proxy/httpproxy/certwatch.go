package httpproxy

import (
	"crypto/tls"
	"os"
	"syscall"
	"time"
)

// certPoll is how often a TLS frontend looks at its certificate files. A
// renewal (certbot, cert-manager, an operator's cp) is served within it,
// without a reload and without dropping a connection.
const certPoll = 2 * time.Second

// fileStamp identifies a version of a file: a renewal that replaces the
// file (rename) changes the inode, one that rewrites it in place changes
// the size or the modification time.
type fileStamp struct {
	ino, size int64
	mod       time.Time
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	s := fileStamp{size: fi.Size(), mod: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ino = int64(st.Ino)
	}
	return s, nil
}

// certFiles is the pair of files a certificate store was loaded from, as
// they were when it was.
type certFiles struct {
	cert, key        string
	certAt, keyAt    fileStamp
	failedC, failedK fileStamp // the version that last failed to load, logged once
}

func stampFiles(cert, key string) certFiles {
	f := certFiles{cert: cert, key: key}
	f.certAt, _ = stampOf(cert)
	f.keyAt, _ = stampOf(key)
	return f
}

// getCertificate is tls.Config.GetCertificate: the current certificates,
// whichever reload or file change put them there.
func (f *Frontend) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return f.certs.Load().get(hello)
}

// watchCerts reloads the certificates when their files change, until
// Close. A pair that does not load (a key not yet written beside its
// certificate) is logged and the current certificates stay; it is tried
// again when the files change again.
func (f *Frontend) watchCerts() {
	t := time.NewTicker(certPoll)
	defer t.Stop()
	for {
		select {
		case <-f.gate.Stopped():
			return
		case <-t.C:
		}
		f.checkCerts()
	}
}

// checkCerts loads the certificate files again if they changed.
func (f *Frontend) checkCerts() {
	f.certMu.Lock()
	defer f.certMu.Unlock()
	cf := &f.certFiles
	if cf.cert == "" {
		return
	}
	c, errC := stampOf(cf.cert)
	k, errK := stampOf(cf.key)
	if errC != nil || errK != nil || (c == cf.certAt && k == cf.keyAt) || (c == cf.failedC && k == cf.failedK) {
		return
	}
	s, err := loadCertStore(cf.cert, cf.key)
	if err != nil {
		cf.failedC, cf.failedK = c, k
		f.log.Error("certificate files changed but do not load; serving the previous certificates", "err", err)
		return
	}
	f.certs.Store(s)
	cf.certAt, cf.keyAt = c, k
	f.log.Info("certificates reloaded: their files changed", "tls_cert", cf.cert, "certificates", len(s.certs))
}
