"""What the alignment model is for: image-sentence retrieval, MRF snippets and region
captions."""
