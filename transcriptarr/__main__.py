from transcriptarr.cli import main

main()
