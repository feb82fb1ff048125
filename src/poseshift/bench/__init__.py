"""Speed benchmarks: video-inference FPS against the paper's Figure 10 and Tables 1-2."""
