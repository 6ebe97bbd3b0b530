"""The Code Analyzer's parts: the field's own analysers behind one finding record, exports, cache and baseline."""
