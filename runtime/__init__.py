"""The shared service runtime: bootstrap, interceptors, deadlines, errors, settings, logs."""
