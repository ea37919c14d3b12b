import FTQCommands
FTQMain.run()
