"""Reference data the engine samples from: conditions and their prevalence, the US population,
names, places and the terminology codings. Plain Python data, nothing downloaded at run time."""
