import BrokerCore
