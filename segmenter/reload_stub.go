package segmenter

// Reload is a placeholder so that the tree compiles on branch wt-e, where
// feed calls Sink.Reload; the segmenter's real implementation replaces this
// file at merge. It does nothing: Applies keep folding into the live state.
func (h *Hub) Reload() {}
