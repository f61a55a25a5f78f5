package tlsserver

// runOCSP emits 'OCSPRequest' to the eligible listeners and waits for the
// shared callback; the staple goes on the connection's own certificate.
func (c *serverConn) runOCSP() error {
	h := &c.hs
	r := c.newReply(true)
	var called bool
	start := c.s.met.ocspStart()
	err := func() (err error) {
		c.calls.Add(1)
		defer func() {
			c.calls.Add(-1)
			if v := recover(); v != nil {
				err = panicError(EventOCSPRequest, v)
			}
		}()
		called = c.ocsp.Emit(h.cert.Certificate[0], h.entry.issuer, OCSPCallback(r.answer))
		return nil
	}()
	if err != nil {
		c.s.met.ocspEnded(start, ocspFailed)
		return c.destroy(err)
	}
	if !called {
		return nil // every eligible listener was removed meanwhile
	}
	staple, err := r.wait()
	switch {
	case err != nil:
		c.s.met.ocspEnded(start, ocspFailed)
		return err
	case len(staple) > 0:
		c.s.met.ocspEnded(start, ocspStapled)
		h.cert.OCSPStaple = staple
	default:
		c.s.met.ocspEnded(start, ocspUnstapled)
	}
	return nil
}
