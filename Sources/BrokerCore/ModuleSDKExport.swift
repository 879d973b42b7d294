@_exported import BrokerModuleSDK
