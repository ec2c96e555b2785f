# Turns a text file into a C++ string literal: cmake -DIN=... -DOUT=... -P
file(READ "${IN}" content)
file(WRITE "${OUT}" "R\"loomlib(${content})loomlib\"\n")
